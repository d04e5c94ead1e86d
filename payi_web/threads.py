"""Carrying the tracking context into other threads, which do not inherit contextvars."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from .context import current_var

__all__ = ["bind_context", "patch_thread_pool", "unpatch_thread_pool"]

P = ParamSpec("P")
R = TypeVar("R")

_original_submit = ThreadPoolExecutor.submit


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, made to run with the tracking context current here, wherever it is called from.

    Only the tracking context is carried (not a copy of the whole `contextvars.Context`), so
    the bound callable may run in many threads at once, e.g. through `executor.map`.
    """
    frame = current_var.get()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        token = current_var.set(frame)
        try:
            return fn(*args, **kwargs)
        finally:
            current_var.reset(token)

    return bound


def _submit_in_context(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    return _original_submit(self, bind_context(fn), *args, **kwargs)


def patch_thread_pool() -> None:
    """Make `ThreadPoolExecutor.submit` (and so `map` and asyncio's `run_in_executor`) carry the context.

    Opt-in, process-wide, idempotent; `unpatch_thread_pool()` undoes it.
    """
    ThreadPoolExecutor.submit = _submit_in_context  # type: ignore[method-assign,assignment]


def unpatch_thread_pool() -> None:
    ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]
