"""One request through an httpx or httpx2 client (the same API): its Pay-i headers where they
belong, and, for a GenAI call, its response observed for the record."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from .._compat.httpx import add_headers, has_payi_headers, replace_body, replace_content
from ..core import records
from ..core.config import current_config
from ..core.context import Frame, current_frame
from ..core.log import warn_once
from ..providers import prepare_body
from .call import Call, Route, attribution, route

__all__ = ["async_stream_class", "begin", "guard_redirect", "observe", "sync_stream_class"]

BYPASS = "payi_web_bypass"  # a request extension: payi-web's own requests to Pay-i (ingest)
# A request extension: the URL `begin()` decided for. A redirect httpx builds from the request
# shares its extensions but not its URL object, so `guard_redirect()` checks that one alone.
_DECIDED = "payi_web_decided"


def _route(request: Any) -> Route:
    url = request.url
    return route(request.method, url.scheme, url.netloc.decode("ascii"), url.host, url.path, current_config())


def begin(request: Any, streaming_send: bool, frame: Frame | None = None) -> tuple[Any, Call | None]:
    """Attach the Pay-i headers where they belong and open a Call for a GenAI endpoint.

    Returns the request to send (possibly rebuilt with a new body) and the Call, or None when
    the request is neither bound for Pay-i nor a GenAI call.
    """
    if request.extensions.get(BYPASS):
        return request, None
    where = _route(request)
    given = _take_payi_headers(request)  # put back, merged, only where they belong
    if not where.payi_bound and where.endpoint is None:
        return request, None  # attribution never leaks to other hosts
    frame = frame or current_frame()
    sent, kept = attribution(frame, given, where.payi_bound, current_config().api_key)
    if sent:
        add_headers(request.headers, sent)  # every xProxy-* one was taken off before
        request.extensions[_DECIDED] = request.url
    if where.endpoint is None or not records.sinks():
        # Nothing records calls (e.g. Pay-i's proxy with the ledger off): the headers were all
        # there was to do, and the request and its response pass untouched.
        return request, None
    try:
        body = request.content
    except Exception:  # a streaming request body: the model stays unknown
        body = b""
    facts, new_body = prepare_body(where.endpoint, body)
    call = Call(where, where.endpoint, request.method, frame, facts, kept)
    if new_body is not None:
        request = _with_body(request, new_body)
    if streaming_send:
        # The stream is read as it passes by: ask for it uncompressed.
        request.headers["accept-encoding"] = "identity"
    return request, call


def guard_redirect(request: Any) -> None:
    """Strip every `xProxy-*` header (the API key too) from a request not bound for Pay-i.

    `begin()` decides for the request a caller sends; a client then sends others built from it
    (redirects it follows, with the first one's headers copied), each passing through here.
    """
    if request.extensions.get(_DECIDED) is request.url:
        return  # the request begin() sent here: decided already (the URL is read at some cost)
    if has_payi_headers(request.headers) and not _route(request).payi_bound:
        _take_payi_headers(request)


def _take_payi_headers(request: Any) -> dict[str, str]:
    """Remove the caller's own `xProxy-*` headers from `request` and return them."""
    if not has_payi_headers(request.headers):
        return {}  # the usual case
    given = {k: v for k, v in request.headers.items() if k.lower().startswith("xproxy-")}
    for name in given:
        del request.headers[name]  # case-insensitive: every spelling goes
    return given


def _with_body(request: Any, body: bytes) -> Any:
    if replace_body(request, body):  # each retry of the SDK builds its request anew
        return request
    headers = request.headers.copy()
    headers.pop("content-length", None)
    return type(request)(
        request.method, request.url, headers=headers, content=body, extensions=request.extensions
    )


def observe(response: Any, call: Call, stream_class: type) -> None:
    """Hand `response` to `call`: at once if its body was read already, else as it streams."""
    try:
        call.on_response(response.status_code, response.headers.get("content-type", ""))
        if not response.is_stream_consumed:
            response.stream = stream_class(response.stream, call)
            return
        body = response.content
        out = call.whole_body(body)
        if out != body:  # the usage chunk payi-web asked for, hidden
            replace_content(response, out)
    except Exception:
        warn_once("on-response", "payi_web: could not observe a response", exc_info=True)
        call.finish()


class _Observing:
    """What both observed bodies share: the call they complete, even if dropped unclosed."""

    def __init__(self, inner: Any, call: Call) -> None:
        self._inner = inner
        self._call = call
        weakref.finalize(self, call.finish)

    @contextmanager
    def _observed(self) -> Iterator[Call]:
        try:
            yield self._call
        except BaseException as exc:
            # A consumer that stopped early (GeneratorExit) did not make the call fail.
            self._call.finish(error=not isinstance(exc, GeneratorExit))
            raise


def sync_stream_class(base: type) -> type:
    class ObservedStream(_Observing, base):  # type: ignore[misc]
        """The response body, observed as it passes to the caller."""

        def __iter__(self) -> Iterator[bytes]:
            with self._observed() as call:
                for chunk in self._inner:
                    if out := call.feed(chunk):
                        yield out
                if tail := call.end_of_body():
                    yield tail

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._call.finish()

    return ObservedStream


def async_stream_class(base: type) -> type:
    class ObservedAsyncStream(_Observing, base):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            with self._observed() as call:
                async for chunk in self._inner:
                    if out := call.feed(chunk):
                        yield out
                if tail := call.end_of_body():
                    yield tail

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._call.finish()

    return ObservedAsyncStream
