"""The project's resolvers, named by dotted path in settings.PAYI."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from .models import Membership

# Counts resolver calls, so that tests can check "at most once per request".
calls: dict[str, int] = {"account_name": 0, "aaccount_name": 0, "gated_account": 0}
# The threads the async resolver ran on, in order.
async_threads: list[str] = []


def account_name(request: HttpRequest) -> str | None:
    calls["account_name"] += 1
    user = request.user
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user_id=user.pk).values_list("account_name", flat=True).first()


async def aaccount_name(request: HttpRequest) -> str | None:
    calls["aaccount_name"] += 1
    async_threads.append(threading.current_thread().name)
    user = await aload_user(request)
    if not user.is_authenticated:
        return None
    return await Membership.objects.filter(user_id=user.pk).values_list("account_name", flat=True).afirst()


async def aload_user(request: HttpRequest) -> Any:
    """`await request.auser()` where Django has it (>= 5.0), else the lazy user loaded in Django's
    thread for sync code."""
    auser = getattr(request, "auser", None)
    return await auser() if auser else await sync_to_async(_loaded_user)(request)


def _loaded_user(request: HttpRequest) -> Any:
    user = request.user
    _ = user.is_authenticated  # loads the lazy user, here in a thread for sync code
    return user


def request_context(request: HttpRequest) -> dict[str, Any]:
    if "X-Break-Context" in request.headers:
        raise RuntimeError("CONTEXT broke on purpose")
    request_id = request.headers.get("X-Request-Id")
    return {"request_properties": {"request_id": request_id}} if request_id else {}


def failing_resolver(request: HttpRequest) -> str | None:
    raise RuntimeError("resolver broke on purpose")


class Gate:
    """What `gated_account` waits for: `entered` when it runs, `open` to let it answer."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()


async def gated_account(request: HttpRequest) -> str | None:
    calls["gated_account"] += 1
    gate: Gate = request.gate  # type: ignore[attr-defined]
    gate.entered.set()
    await gate.open.wait()
    return "gated"
