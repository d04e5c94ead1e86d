"""Making a frame the current context: for a block, a call, or each step of an iterator.

Every place payi-web makes a frame current goes through here: the scopes of `@track`, the
threads `bind_context()` hands work to, and the framework layers' requests and streamed bodies.
`bind_iterator()` and `abind_iterator()` are the one sync and the one async stepper: the body
of a tracked generator, a Django streaming response and a Flask streamed body each run a step
at a time, with their frame current, whoever consumes them and whenever.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Callable, Generator, Iterable, Iterator
from contextvars import Token
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

from .context import Frame, current_var

__all__ = [
    "FrameToken",
    "abind_iterator",
    "bind_iterator",
    "enter_frame",
    "exit_frame",
    "is_bound",
    "run_in_frame",
    "use_frame",
]

P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")

FrameToken = Token["Frame | None"]


def enter_frame(frame: Frame | None) -> FrameToken:
    """Make `frame` current (None: the root, the application-wide defaults); `exit_frame()` undoes it."""
    return current_var.set(frame)


def exit_frame(token: FrameToken) -> None:
    """Make current again what was current before `enter_frame()` returned `token`."""
    try:
        current_var.reset(token)
    except ValueError:
        # The token belongs to another Context: a generator body that entered a scope before a
        # yield and left it after being resumed from another thread or task. Restoring the
        # value is what reset() would have done there.
        previous = token.old_value
        current_var.set(None if previous is Token.MISSING else previous)


class use_frame:
    """`with use_frame(frame):` (or `async with`): `frame` is current inside the block.

    One object may be entered again once it has been left, not twice at once.
    """

    __slots__ = ("_frame", "_token")

    def __init__(self, frame: Frame | None) -> None:
        self._frame = frame
        self._token: FrameToken | None = None

    def __enter__(self) -> Frame | None:
        self._token = current_var.set(self._frame)
        return self._frame

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            exit_frame(token)

    async def __aenter__(self) -> Frame | None:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def run_in_frame(frame: Frame | None, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)`, run with `frame` current."""
    token = current_var.set(frame)
    try:
        return fn(*args, **kwargs)
    finally:
        exit_frame(token)


def _advance(iterator: Iterator[Y], sent: Any, error: BaseException | None) -> Y:
    if error is not None:
        throw = getattr(iterator, "throw", None)
        if throw is None:
            raise error  # a plain iterator: the error is the consumer's to see
        return throw(error)  # type: ignore[no-any-return]
    if sent is None:
        return next(iterator)
    return iterator.send(sent)  # type: ignore[attr-defined,no-any-return]


def _closer(name: str, closing: object, iterable: object, iterator: object) -> Callable[[], Any] | None:
    """`closing`'s `close` (or `aclose`: `name`), else the iterable's, else its iterator's."""
    for target in (closing,) if closing is not None else (iterable, iterator):
        close = getattr(target, name, None)
        if close is not None:
            return close  # type: ignore[no-any-return]
    return None


def bind_iterator(iterable: Iterable[Y], frame: Frame, closing: object = None) -> Generator[Y, Any, Any]:
    """`iterable`'s items, each step (its first `iter()` included) run with `frame` current.

    A scope that a step enters (a `with track_context()` around a `yield`) stays current for the
    steps that follow, until the body leaves it; between steps the consumer's context is
    untouched. Values sent and exceptions thrown go to the body; its return value is returned.
    Closed early, it closes `closing` (default: `iterable`, else its iterator) in the frame, so
    the body's `finally` blocks and scopes end where they began.
    """
    iterator = run_in_frame(frame, iter, iterable)  # a generator's body runs from its first step
    sent: Any = None
    error: BaseException | None = None
    while True:
        token = current_var.set(frame)
        try:
            item = _advance(iterator, sent, error)
        except StopIteration as stop:
            return stop.value
        finally:
            frame = current_var.get() or frame
            current_var.reset(token)  # set and reset in one call: always the same Context
        error = sent = None
        try:
            sent = yield item
        except GeneratorExit:
            close = _closer("close", closing, iterable, iterator)
            if close is not None:
                run_in_frame(frame, close)
            raise
        except BaseException as exc:
            error = exc


async def _aadvance(iterator: Any, sent: Any, error: BaseException | None) -> Any:
    if error is not None:
        athrow = getattr(iterator, "athrow", None)
        if athrow is None:
            raise error
        return await athrow(error)
    if sent is None:
        return await anext(iterator)
    return await iterator.asend(sent)


async def abind_iterator(
    iterable: AsyncIterable[Y], frame: Frame, closing: object = None
) -> AsyncGenerator[Y, Any]:
    """`bind_iterator()` for an async iterable (closed early: `closing`'s, or its own, `aclose()`)."""
    iterator = run_in_frame(frame, aiter, iterable)
    sent: Any = None
    error: BaseException | None = None
    while True:
        token = current_var.set(frame)
        try:
            item = await _aadvance(iterator, sent, error)
        except StopAsyncIteration:
            return
        finally:
            frame = current_var.get() or frame
            exit_frame(token)  # a step may have been awaited across tasks
        error = sent = None
        try:
            sent = yield item
        except GeneratorExit:
            aclose = _closer("aclose", closing, iterable, iterator)
            if aclose is not None:
                async with use_frame(frame):
                    await aclose()
            raise
        except BaseException as exc:
            error = exc


def is_bound(iterator: object) -> bool:
    """Whether `iterator` is a stepper's (a tracked generator's body, a bound stream), which makes
    its own frame current at every step: binding it to another frame would change nothing its
    steps can see."""
    code = getattr(iterator, "gi_code", None) or getattr(iterator, "ag_code", None)
    return code is _STEPPER_CODE or code is _ASTEPPER_CODE


_STEPPER_CODE: Final = bind_iterator.__code__
_ASTEPPER_CODE: Final = abind_iterator.__code__
