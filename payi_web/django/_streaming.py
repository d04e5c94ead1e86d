"""Streamed responses keep their scope: each step of the content runs with a given frame current.

A `StreamingHttpResponse`'s content is produced after the view returned, while the server sends
it. The middleware binds it to the request's frame, and `@track` on a view returning one binds it
to the view's frame (registered with the core's `bind_result_type`), so a streamed GenAI call in
the response iterator is attributed to the request's user and the view's use case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

from django.http import FileResponse, StreamingHttpResponse

from ..context import Frame, current_var
from ..tracking import _restore, bind_result_type, runs_in_its_own_scope

__all__ = ["bind_response", "register"]

R = TypeVar("R")


def _bind(content: Iterable[bytes], frame: Frame) -> Iterator[bytes]:
    iterator = iter(content)
    while True:
        token = current_var.set(frame)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            current_var.reset(token)
        yield chunk


async def _abind(content: AsyncIterator[bytes], frame: Frame) -> AsyncIterator[bytes]:
    iterator = aiter(content)
    while True:
        token = current_var.set(frame)
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            _restore(token)
        yield chunk


# Set on a response whose content is bound already (by `@track` on the view): a frame inside
# the request's, whose every step the middleware's binding would only wrap once more.
_BOUND = "_payi_web_bound"


def bind_response(response: R, frame: Frame) -> R:
    """`response`, its streamed content (if any) bound to `frame`. Files are left alone (sendfile)."""
    if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
        if response.__dict__.get(_BOUND):
            return response
        response.__dict__[_BOUND] = True
        if runs_in_its_own_scope(getattr(response, "_iterator", None)):
            # A tracked generator, given as is (Django keeps it in `_iterator`): already bound,
            # and reading `streaming_content` to wrap it would encode each chunk twice.
            return response
        if response.is_async:
            response.streaming_content = _abind(response.streaming_content, frame)  # type: ignore[arg-type]
        else:
            response.streaming_content = _bind(response.streaming_content, frame)  # type: ignore[arg-type]
    return response


def _adapter(response: Any, frame: Frame) -> Any:
    return bind_response(response, frame)


def register() -> None:
    """Teach `@track` that a view's StreamingHttpResponse keeps the view's scope (idempotent)."""
    bind_result_type(StreamingHttpResponse, _adapter)
