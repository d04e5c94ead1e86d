"""One outgoing request through an instrumented client: its Pay-i headers and, for a GenAI call, its record.

The HTTP library is passed in (httpx or httpx2: the same API), so one piece of code serves both.
Every step is guarded by the caller (`instrument.py`): whatever fails here, the request goes
out as it would without payi-web.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from . import records
from ._compat.httpx import add_headers, has_payi_headers, replace_body, replace_content
from ._genai import (
    Endpoint,
    RequestFacts,
    ResponseFacts,
    StreamObserver,
    classify,
    parse_json,
    prepare_body,
    usage_from_json,
)
from ._log import warn_once
from .config import Config, current_config
from .context import Frame, current_frame
from .headers import CANONICAL, PayiHeaders, context_headers, merge_headers

_MAX_BUFFERED_BODY = 8 * 1024 * 1024
_API_KEY = PayiHeaders.API_KEY
_API_KEY_LOWER = _API_KEY.lower()
_NO_FACTS = ResponseFacts({})


def _canonical(name: str) -> str:
    # Pay-i's spelling reads better in records and logs than the caller's or httpx's.
    return CANONICAL.get(name.lower(), name)


def bound_for_payi(url: str, config: Config) -> bool:
    """Whether `url` (without query) is under the Pay-i base URL or one of the header hosts."""
    for prefix in (config.base_url, *config.header_hosts):
        if url == prefix or url.startswith(prefix + "/"):
            return True
    return False


def _plain_url(request: Any) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"


class Call:
    """A GenAI call in flight: what is needed to build its record when it ends."""

    __slots__ = (
        "_buffer",
        "_done",
        "_observer",
        "_unusable",
        "endpoint",
        "facts",
        "frame",
        "headers",
        "method",
        "proxied",
        "response_facts",
        "start",
        "started_at",
        "status",
        "url",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        frame: Frame,
        url: str,
        method: str,
        proxied: bool,
        facts: RequestFacts,
        headers: Mapping[str, str],
    ) -> None:
        self.endpoint = endpoint
        self.frame = frame
        self.url = url
        self.method = method
        self.proxied = proxied
        self.facts = facts
        self.headers = headers
        self.started_at = datetime.now(timezone.utc)
        self.start = time.perf_counter()
        self.status: int | None = None
        self.response_facts = _NO_FACTS
        self._observer: StreamObserver | None = None
        self._buffer: bytearray | None = None
        # A 2xx body that is not the JSON object the endpoint answers with: the SDK raised on it
        # (or handed the caller a string), so the call failed whatever its status says.
        self._unusable = False
        self._done = False

    # --- the response ---------------------------------------------------------------------

    def on_response(self, response: Any) -> bool:
        """Take the status and, if the body was read already, finish. True: the body is still to come."""
        status = self.status = response.status_code
        content_type = response.headers.get("content-type", "")
        if self.facts.stream or "text/event-stream" in content_type:
            hide = self.facts.added_usage and status < 400
            self._observer = StreamObserver(self.endpoint.category, hide, time.perf_counter)
        if not response.is_stream_consumed:
            if self._observer is None:
                self._buffer = bytearray()
            return True
        # The body was read already (a non-streaming send, or a body given whole).
        body = response.content
        if self._observer is not None:
            content = self._observer.feed(body) + self._observer.finish()
            if content != body:  # the usage chunk payi-web asked for, hidden
                replace_content(response, content)
        else:
            self._parse_json(body)
        self.finish()
        return False

    def feed(self, chunk: bytes) -> bytes:
        """Observe one chunk of a streamed body; return what the caller gets."""
        if self._done:
            return chunk
        try:
            if self._observer is not None:
                return self._observer.feed(chunk)
            if self._buffer is not None:
                if len(self._buffer) + len(chunk) <= _MAX_BUFFERED_BODY:
                    self._buffer += chunk
                else:  # too large to read for its usage: unknown, not a failure
                    self._buffer = None
        except Exception:
            warn_once("observe-stream", "payi_web: could not observe a response stream", exc_info=True)
            self._observer = self._buffer = None
        return chunk

    def end_of_body(self) -> bytes:
        """The body ended: pass on what is held back, and finish the record."""
        tail = b""
        try:
            if self._observer is not None:
                tail = self._observer.finish()
            elif self._buffer is not None:
                self._parse_json(bytes(self._buffer))
        except Exception:
            warn_once("observe-stream", "payi_web: could not observe a response stream", exc_info=True)
        self.finish()
        return tail

    def _parse_json(self, body: bytes) -> None:
        if self.status is not None and self.status < 400:  # an error body holds no usage
            try:
                payload = parse_json(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                self.response_facts = usage_from_json(payload, self.endpoint.category)
            else:
                self._unusable = True

    # --- the record -----------------------------------------------------------------------

    def finish(self, error: bool = False) -> None:
        """Build the record once and hand it to the sinks (idempotent)."""
        if self._done:
            return
        self._done = True
        try:
            latency = (time.perf_counter() - self.start) * 1000
            observer = self._observer
            if observer is None:
                units, response_id, model = self.response_facts
                first_token = None
            else:
                units, response_id, model = observer.units, observer.response_id, observer.model
                first_event = observer.first_event_at
                first_token = None if first_event is None else (first_event - self.start) * 1000
            status = self.status
            frame = self.frame
            record = records.CallRecord(
                timestamp=self.started_at,
                category=self.endpoint.category,
                resource=self.facts.model or model,
                method=self.method,
                url=self.url,
                status=status,
                latency_ms=latency,
                time_to_first_token_ms=first_token,
                response_id=response_id,
                failed=(  # what the caller saw
                    error
                    or status is None
                    or status >= 400
                    or self._unusable
                    or (observer is not None and observer.failed)
                ),
                streamed=observer is not None,
                proxied=self.proxied,
                context=frame.record_snapshot(),
                units=units,
                headers=self.headers,
            )
            records.emit(record)
        except Exception:
            warn_once("build-record", "payi_web: could not build a call record", exc_info=True)


def begin(request: Any, streaming_send: bool, frame: Frame | None = None) -> tuple[Any, Call | None]:
    """Attach the Pay-i headers where they belong and open a Call for a GenAI endpoint.

    Returns the request to send (possibly rebuilt with a new body) and the Call, or None when
    the request is neither bound for Pay-i nor a GenAI call.
    """
    if request.extensions.get("payi_web_bypass"):
        return request, None
    config = current_config()
    url, proxied, endpoint = _route(request, config)
    given = _take_payi_headers(request)  # put back below, merged, only where they belong
    if not proxied and endpoint is None:
        return request, None  # attribution never leaks to other hosts
    frame = frame or current_frame()
    headers: Mapping[str, str] | None = None
    if given:
        headers = merge_headers(frame, given, proxied)
    elif proxied:
        headers = context_headers(frame, True)
    if proxied and headers is not None:
        _put_headers(request, headers, config.api_key)
    if endpoint is None or not records.sinks():
        # Nothing records calls (e.g. Pay-i's proxy with the ledger off): the headers were all
        # there was to do, and the request and its response pass untouched.
        return request, None
    if headers is None:
        headers = context_headers(frame, False)  # shared by the scope's records, never changed
    elif given:
        headers = {k: v for k, v in headers.items() if k.lower() != _API_KEY_LOWER}
    try:
        body = request.content
    except Exception:  # a streaming request body: the model stays unknown
        body = b""
    facts, new_body = prepare_body(endpoint, body)
    call = Call(endpoint, frame, url, request.method, proxied, facts, headers)
    if new_body is not None:
        request = _with_body(request, new_body)
    if streaming_send:
        # The stream is read as it passes by: ask for it uncompressed.
        request.headers["accept-encoding"] = "identity"
    return request, call


# What a URL is (its plain form, whether it is bound for Pay-i, its GenAI endpoint), decided once
# per method and URL for the configuration in force: an app calls the same few endpoints.
_MAX_ROUTES = 1024
_Route = tuple[str, bool, "Endpoint | None"]
_route_cache: tuple[Config | None, dict[tuple[Any, ...], _Route]] = (None, {})


def _route(request: Any, config: Config) -> _Route:
    global _route_cache
    cached_for, routes = _route_cache
    if cached_for is not config:
        routes = {}
        _route_cache = (config, routes)
    url = request.url
    key = (request.method, url.scheme, url.netloc, url.path)
    route = routes.get(key)
    if route is None:
        if len(routes) >= _MAX_ROUTES:
            routes.clear()
        plain = _plain_url(request)
        route = routes[key] = (
            plain,
            bound_for_payi(plain, config),
            classify(request.method, url.host, url.path),
        )
    return route


def _take_payi_headers(request: Any) -> dict[str, str]:
    """Remove the caller's own `xProxy-*` headers from `request` and return them."""
    if not has_payi_headers(request.headers):
        return {}  # the usual case
    given = {_canonical(k): v for k, v in request.headers.items() if k.lower().startswith("xproxy-")}
    for name in given:
        del request.headers[name]  # case-insensitive: every spelling goes
    return given


def _put_headers(request: Any, headers: Mapping[str, str], api_key: str | None) -> None:
    if api_key and not any(k.lower() == _API_KEY_LOWER for k in headers):
        headers = {**headers, _API_KEY: api_key}
    add_headers(request.headers, headers)  # every xProxy-* one was taken off before


def guard_redirect(request: Any) -> None:
    """Strip every `xProxy-*` header (the API key too) from a request not bound for Pay-i.

    `begin()` decides for the request a caller sends; a client then sends others built from it
    (redirects it follows, with the first one's headers copied), each passing through here.
    """
    if has_payi_headers(request.headers) and not _route(request, current_config())[1]:
        _take_payi_headers(request)


def _with_body(request: Any, body: bytes) -> Any:
    if replace_body(request, body):  # each retry of the SDK builds its request anew
        return request
    headers = request.headers.copy()
    headers.pop("content-length", None)
    return type(request)(
        request.method, request.url, headers=headers, content=body, extensions=request.extensions
    )
