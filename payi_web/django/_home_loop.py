"""An `async def` resolver needed in a plain worker thread, run on its request's own event loop.

A view on the event loop that hands work to a thread pool (`run_in_executor` with
`bind_context()`) leaves that thread without an event loop: `async_to_sync` would start a new
loop in a new thread for each resolution (~0.6 ms). The request's loop is right there, and idle
while the view awaits the pool, so the resolver runs there instead, in the request's context (so
Django's thread-sensitive code goes to the request's own thread, as if the view awaited it), and
the worker waits for its answer.

Only where that cannot deadlock: the callable was bound on that loop (async code, which awaits
the pool rather than blocking), the worker is not one of asgiref's threads (asgiref has its own
cheap way there), and the wait is bounded: a loop blocked by its own code falls back to
`async_to_sync`, logged once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from .._compat.asgiref import in_asgiref_thread
from .._compat.stdlib import running_loop
from ..integration import bound_on_loop, warn_once

__all__ = ["Home", "home_here", "resolve_at_home"]

# The request's event loop and its context, as they were when the request's scope began.
Home = tuple[asyncio.AbstractEventLoop, contextvars.Context]

# Seconds a worker waits for the request's loop before resolving on its own.
WAIT = 2.0


class NotAtHome(Exception):
    """The resolver could not run on the request's loop: resolve another way."""


def home_here() -> Home:
    """The running loop and a copy of the context: call on the request's event loop."""
    return asyncio.get_running_loop(), contextvars.copy_context()


def _may_wait_for(loop: asyncio.AbstractEventLoop) -> bool:
    if running_loop() is not None:
        return False  # an event loop's thread never blocks on another loop
    if in_asgiref_thread():
        return False  # an asgiref thread: async_to_sync reuses the main loop, safely, from there
    return bound_on_loop() is loop and loop.is_running() and not loop.is_closed()


def resolve_at_home(home: Home, aget: Callable[[], Awaitable[Any]]) -> Any:
    """`await aget()` on the request's loop, from a worker thread; NotAtHome if that cannot be."""
    loop, context = home
    if not _may_wait_for(loop):
        raise NotAtHome
    answer: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start() -> None:
        if not answer.set_running_or_notify_cancel():
            return  # the worker gave up before the loop got here
        task = asyncio.ensure_future(aget())
        task.add_done_callback(lambda done: _copy(done, answer))

    try:
        loop.call_soon_threadsafe(start, context=context)
        return answer.result(WAIT)
    except concurrent.futures.TimeoutError:
        answer.cancel()  # start() does nothing when the loop gets to it
        warn_once(
            "home-loop",
            "payi_web: the request's event loop did not run an async resolver within %.1f s (is it "
            "blocked?); resolving it from the worker thread",
            WAIT,
        )
        raise NotAtHome from None
    except RuntimeError:  # the loop closed meanwhile
        raise NotAtHome from None


def _copy(task: asyncio.Future[Any], answer: concurrent.futures.Future[Any]) -> None:
    if task.cancelled():
        answer.set_exception(NotAtHome())
    elif task.exception() is not None:
        answer.set_exception(task.exception())
    else:
        answer.set_result(task.result())
