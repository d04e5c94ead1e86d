"""The PAYI resolvers: the account from the loaded user, the request id from a header."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest


async def aload_user(request: HttpRequest) -> Any:
    """`await request.auser()` where Django has it (>= 5.0), else the lazy user loaded in Django's
    thread for sync code."""
    auser = getattr(request, "auser", None)
    return await auser() if auser else await sync_to_async(_loaded_user)(request)


def _loaded_user(request: HttpRequest) -> Any:
    user = request.user
    _ = user.is_authenticated  # loads the lazy user
    return user


def account_name(request: HttpRequest) -> str | None:
    user = request.user
    return (user.last_name or None) if user.is_authenticated else None


async def aaccount_name(request: HttpRequest) -> str | None:
    user = await aload_user(request)  # cached by the view's own load: no query
    return (user.last_name or None) if user.is_authenticated else None


def request_context(request: HttpRequest) -> dict[str, Any]:
    request_id = request.headers.get("X-Request-Id")
    return {"request_properties": {"request_id": request_id}} if request_id else {}
