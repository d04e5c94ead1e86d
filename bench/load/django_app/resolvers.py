"""The PAYI resolvers: the account from the loaded user, the request id from a header."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def account_name(request: HttpRequest) -> str | None:
    user = request.user
    return (user.last_name or None) if user.is_authenticated else None


async def aaccount_name(request: HttpRequest) -> str | None:
    user = await request.auser()  # cached by the view's own auser() call: no query
    return (user.last_name or None) if user.is_authenticated else None


def request_context(request: HttpRequest) -> dict[str, Any]:
    request_id = request.headers.get("X-Request-Id")
    return {"request_properties": {"request_id": request_id}} if request_id else {}
