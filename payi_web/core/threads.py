"""Carrying the tracking context into other threads, which do not inherit contextvars."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from .._compat.stdlib import running_loop
from .context import Frame, current_var
from .current import run_in_frame

__all__ = ["bind_context", "patch_thread_pool", "unpatch_thread_pool"]

P = ParamSpec("P")
R = TypeVar("R")


# While a bound callable runs: the event loop whose thread bound it (None: bound outside one).
# Framework layers use it to know that the binding code awaits this thread rather than blocking.
binding_loop: ContextVar[asyncio.AbstractEventLoop | None] = ContextVar("payi_web_binding_loop", default=None)


def _bound(fn: Callable[P, R], frame: Frame | None) -> Callable[P, R]:
    loop = running_loop()

    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        loop_token = binding_loop.set(loop)
        try:
            return run_in_frame(frame, fn, *args, **kwargs)
        finally:
            binding_loop.reset(loop_token)

    return bound


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, made to run with the tracking context current here, wherever it is called from.

    Only the tracking context is carried (not a copy of the whole `contextvars.Context`), so
    the bound callable may run in many threads at once, e.g. through `executor.map`.
    """
    return functools.wraps(fn)(_bound(fn, current_var.get()))


# The submit() that patch_thread_pool() wrapped (whatever it was then: another library may
# have wrapped it too), restored by unpatch_thread_pool().
_wrapped_submit: Callable[..., Future[Any]] | None = None


def patch_thread_pool() -> None:
    """Make `ThreadPoolExecutor.submit` (and so `map` and asyncio's `run_in_executor`) carry the context.

    Opt-in, process-wide, idempotent; `unpatch_thread_pool()` undoes it.
    """
    global _wrapped_submit
    if _wrapped_submit is not None:
        return
    previous = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return previous(self, _bound(fn, current_var.get()), *args, **kwargs)

    _wrapped_submit = previous
    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]


def unpatch_thread_pool() -> None:
    global _wrapped_submit
    if _wrapped_submit is not None:
        ThreadPoolExecutor.submit = _wrapped_submit  # type: ignore[method-assign]
        _wrapped_submit = None
