"""Streamed responses keep their scope: each step of the content runs with a given frame current.

A `StreamingHttpResponse`'s content is produced after the view returned, while the server sends
it. The middleware binds it to the request's frame, and `@track` on a view returning one binds it
to the view's frame (registered with the core's `bind_result_type`), so a streamed GenAI call in
the response iterator is attributed to the request's user and the view's use case.
"""

from __future__ import annotations

import asyncio
from types import AsyncGeneratorType
from typing import Any, TypeVar, cast

from django.http import FileResponse, StreamingHttpResponse

from .._compat.django import add_closer, move_last_closer_first, streaming_body
from ..integration import Frame, abind_iterator, bind_iterator, is_bound

__all__ = ["bind_response"]

R = TypeVar("R")


# Set on a response whose content is bound already (by `@track` on the view): a frame inside
# the request's, whose every step the middleware's binding would only wrap once more.
_BOUND = "_payi_web_bound"


def bind_response(response: R, frame: Frame) -> R:
    """`response`, its streamed content (if any) bound to `frame`. Files are left alone (sendfile)."""
    if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
        if response.__dict__.get(_BOUND):
            return response
        response.__dict__[_BOUND] = True
        body = streaming_body(response)  # the view's own
        if is_bound(body):
            # A tracked generator, given as is: already bound, and reading `streaming_content`
            # to wrap it would encode each chunk twice.
            if response.is_async:
                _close_when_response_closes(response, body)
            return response
        # `body` is closed in the frame if the stream ends early (a client gone).
        content = response.streaming_content
        if response.is_async:
            stream = abind_iterator(content, frame, body)  # type: ignore[arg-type]
            response.streaming_content = stream
            _close_when_response_closes(response, stream)
        else:
            response.streaming_content = bind_iterator(content, frame, body)  # type: ignore[arg-type]
            # Django closes a response's iterators in the order they were set: the view's first,
            # outside any scope. The binding's close, moved first, closes the view's iterator in the frame.
            move_last_closer_first(response)
    return response


# The closings under way: the event loop keeps only weak references to its tasks.
_closing: set[asyncio.Task[None]] = set()


def _close_when_response_closes(response: StreamingHttpResponse, content: object) -> None:
    # A client gone mid-stream: Django's ASGI handler stops iterating and closes the response,
    # but not its async content, which the garbage collector finalises later, in no scope and
    # racing the view's own body. Closed here, on the loop serving it, the binding closes the
    # view's body in the frame, at once.
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # served without an event loop (WSGI): Django consumes it whole
    stream = cast("AsyncGeneratorType[Any, None]", content)  # the binding, or a tracked generator

    def close_on_loop() -> None:
        if stream.ag_frame is not None and not stream.ag_running:  # neither done nor running
            task = loop.create_task(stream.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    def close() -> None:  # Django calls it from a worker thread
        if stream.ag_frame is not None and not loop.is_closed():
            loop.call_soon_threadsafe(close_on_loop)

    add_closer(response, close)
