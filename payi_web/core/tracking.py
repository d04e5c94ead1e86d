"""`@track` and `track_context()`: scopes that derive a new tracking context for the code they wrap."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from typing_extensions import Unpack

from . import context as _context
from .context import Frame, current_scope, current_var
from .current import abind_iterator, bind_iterator, enter_frame, exit_frame, use_frame
from .fields import TrackFields, validate_fields
from .log import warn_once

__all__ = ["track", "track_context"]

F = TypeVar("F", bound=Callable[..., Any])
_Y = TypeVar("_Y")


def _sync_generator(fn: Callable[..., Generator[_Y, Any, Any]], args: dict[str, Any]) -> Callable[..., Any]:
    # A plain function, not a generator function: the scope is derived where the generator is
    # created (a streamed response keeps its attribution after the request scope has ended),
    # then made current around every step of the body. A scope the body enters stays current
    # across its yields.
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Generator[_Y, Any, Any]:
        return bind_iterator(fn(*a, **kw), Frame(current_scope(), args))

    return wrapper


def _async_generator(fn: Callable[..., AsyncGenerator[_Y, Any]], args: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> AsyncGenerator[_Y, Any]:
        return abind_iterator(fn(*a, **kw), Frame(current_scope(), args))

    return wrapper


# What a tracked function may return that runs *after* it returned: `{type: adapter}`, where
# `adapter(result, frame)` returns the result bound to the call's frame. A coroutine (e.g. what
# Django's `View.dispatch` returns for an async handler) runs in the scope; framework layers add
# their streamed responses (`bind_result_type`), so a tracked streaming view keeps its use case.
_result_adapters: dict[type, Callable[[Any, Frame], Any]] = {}


async def _coroutine_in_frame(coro: Any, frame: Frame) -> Any:
    async with use_frame(frame):
        return await coro


_result_adapters[types.CoroutineType] = _coroutine_in_frame


def bind_result_type(kind: type, adapter: Callable[[Any, Frame], Any]) -> None:
    """Have tracked functions returning exactly `kind` return `adapter(result, frame)` instead."""
    _result_adapters[kind] = adapter


def unbind_result_type(kind: type, adapter: Callable[[Any, Frame], Any]) -> None:
    """Undo `bind_result_type(kind, adapter)` (nothing if another adapter replaced it since)."""
    if _result_adapters.get(kind) is adapter:
        del _result_adapters[kind]


def _wrap_class(cls: type, args: dict[str, Any]) -> type:
    # A class-based view: its `dispatch` is tracked; the class itself (as_view(), async
    # detection, which Django and DRF base on the handlers) is unchanged.
    dispatch = inspect.getattr_static(cls, "dispatch", None)
    if dispatch is None:
        raise TypeError(
            f"track() decorates a class only if it has a dispatch() method (a class-based view): {cls!r}"
        )
    cls.dispatch = _wrap(dispatch, args)  # type: ignore[attr-defined]
    return cls


def _wrap(fn: Any, args: dict[str, Any]) -> Any:
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(_wrap(fn.__func__, args))
    if isinstance(fn, type):
        return _wrap_class(fn, args)
    if not callable(fn):
        raise TypeError(f"track() decorates a function or method, got {type(fn).__name__} {fn!r}")
    if inspect.isasyncgenfunction(fn):
        return _async_generator(fn, args)
    if inspect.isgeneratorfunction(fn):
        return _sync_generator(fn, args)
    adapters = _result_adapters
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*a: Any, **kw: Any) -> Any:
            frame = Frame(current_scope(), args)
            token = enter_frame(frame)
            try:
                result = await fn(*a, **kw)
            finally:
                exit_frame(token)
            adapter = adapters.get(type(result))
            return result if adapter is None else adapter(result, frame)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        frame = Frame(current_scope(), args)
        token = enter_frame(frame)
        try:
            result = fn(*a, **kw)
        finally:
            exit_frame(token)
        adapter = adapters.get(type(result))
        return result if adapter is None else adapter(result, frame)

    return wrapper


@overload
def track(func: F, /) -> F: ...
@overload
def track(**fields: Unpack[TrackFields]) -> Callable[[F], F]: ...
def track(func: Any = None, /, **fields: Any) -> Any:
    """Decorate a function, coroutine function, (async) generator function or method with a scope.

    Arguments are validated here, at decoration time. Each call derives its context from the
    caller's; for generators the scope is current while the body runs, at every step. A class
    with a `dispatch()` method (a class-based view) gets its `dispatch` decorated.
    """
    args = validate_fields("track()", fields)
    if func is None:
        return lambda fn: _wrap(fn, args)
    return _wrap(func, args)


class track_context:
    """A scope for a block: `with track_context(user_id="42"): ...` (also `async with`, and as a decorator).

    One object may be entered many times, nested, and from many threads at once: each entry
    keeps its state in the frame it makes current, not in the object.
    """

    __slots__ = ("_args",)

    def __init__(self, **fields: Unpack[TrackFields]) -> None:
        self._args = validate_fields("track_context()", fields)

    def __enter__(self) -> None:
        # current_scope(), inlined: this runs on every request's path.
        parent = current_var.get()
        frame = Frame(parent if parent is not None else _context._root, self._args, self)
        frame.token = current_var.set(frame)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = current_var.get()
        if frame is not None and frame.owner is self and frame.token is not None:
            exit_frame(frame.token)
            return
        # A scope inside was left open: find the innermost frame this object entered (the
        # scopes left open inside it are discarded with it).
        while frame is not None and (frame.owner is not self or frame.token is None):
            frame = frame.parent
        if frame is None or frame.token is None:
            # Exited without a matching entry in this context (e.g. in another task than the
            # one that entered it): tracking never breaks the caller over it.
            warn_once(
                "exit-out-of-order", "payi_web: track_context() exited out of order; context left unchanged"
            )
            return
        exit_frame(frame.token)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        return cast(F, _wrap(fn, self._args))
