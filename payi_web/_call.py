"""One outgoing request through an instrumented client: its Pay-i headers and, for a GenAI call, its record.

The HTTP library is passed in (httpx or httpx2: the same API), so one piece of code serves both.
Every step is guarded by the caller (`instrument.py`): whatever fails here, the request goes
out as it would without payi-web.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import partial
from operator import itemgetter
from typing import Any, Final

from . import records
from ._genai import (
    Endpoint,
    RequestFacts,
    ResponseFacts,
    StreamObserver,
    classify,
    loads,
    prepare_body,
    usage_from_json,
)
from ._log import warn_once
from .config import Config, current_config
from .context import Frame, current_frame
from .headers import CANONICAL, PayiHeaders, context_headers, fresh_headers, merge_headers

# Where a response keeps the JSON body parsed for its record, for its first `json()` call.
PARSED_JSON = "_payi_web_json"
_MAX_BUFFERED_BODY = 8 * 1024 * 1024
_API_KEY = PayiHeaders.API_KEY
_API_KEY_LOWER = _API_KEY.lower()
_NO_FACTS = ResponseFacts({})
_LOWER_NAME = itemgetter(1)
_new_record: Callable[[tuple[Any, ...]], records.CallRecord] = partial(tuple.__new__, records.CallRecord)


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
        if not self.facts.stream:
            body = getattr(response, "_content", None)
            if body is not None and body[:1] == b"{":
                # A JSON body, read already (the usual non-streaming call): no header to look up.
                if status < 400:  # an error body holds no usage
                    self._take_json(response, body)
                self.finish()
                return False
        content_type = response.headers.get("content-type", "")
        if self.facts.stream or "text/event-stream" in content_type:
            hide = self.facts.added_usage and response.status_code < 400
            self._observer = StreamObserver(self.endpoint.category, hide, time.perf_counter)
        if not hasattr(response, "_content"):
            if self._observer is None:
                self._buffer = bytearray()
            return True
        # The body was read already (a non-streaming send, or a body given whole).
        if self._observer is not None:
            content = self._observer.feed(response.content)
            response._content = content + self._observer.finish()
        else:
            self._parse_json(response.content)
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

    def _take_json(self, response: Any, body: bytes) -> None:
        """Read a whole JSON body once: the SDK's own `response.json()` gets the same parse."""
        payload = self._payload(body)
        if payload is not None and getattr(type(response).json, "__payi_web__", False):
            response.__dict__[PARSED_JSON] = payload

    def _parse_json(self, body: bytes) -> None:
        if self.status is not None and self.status < 400:  # an error body holds no usage
            self._payload(body)

    def _payload(self, body: bytes) -> dict[str, Any] | None:
        """The JSON object of a successful response, its facts taken; None (unusable) otherwise."""
        try:
            payload = loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._unusable = True
            return None
        self.response_facts = usage_from_json(payload, self.endpoint.category)
        return payload

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
            record = _new_record(  # the fields in order, without the named tuple's Python-level __new__
                (
                    self.started_at,  # timestamp
                    self.endpoint.category,  # category
                    self.facts.model or model,  # resource
                    self.method,  # method
                    self.url,  # url
                    status,  # status
                    latency,  # latency_ms
                    first_token,  # time_to_first_token_ms
                    response_id,  # response_id
                    error  # failed: what the caller saw
                    or status is None
                    or status >= 400
                    or self._unusable
                    or (observer is not None and observer.failed),
                    observer is not None,  # streamed
                    self.proxied,  # proxied
                    frame.shared_snapshot or frame.record_snapshot(),  # context
                    units,  # units
                    self.headers,  # headers
                )
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
    entries = _entries(request.headers)
    given = _given_payi_headers(request.headers, entries)
    if given:
        _strip_payi_headers(request)  # put back below, merged, only where they belong
    if not proxied and endpoint is None:
        return request, None  # attribution never leaks to other hosts
    frame = frame or current_frame()
    headers: Mapping[str, str] | None = None
    if given:
        headers = _merge_given(request, given, frame, config, proxied)
    elif proxied:
        headers = _add_context_headers(request.headers, entries, frame, config)
    if endpoint is None or not records.sinks():
        # Nothing records calls (e.g. Pay-i's proxy with the ledger off): the headers were all
        # there was to do, and the request and its response pass untouched.
        return request, None
    if headers is None:
        headers = context_headers(frame, False)  # shared by the scope's records, never changed
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
    # httpx's and httpx2's parsed URL: (scheme, userinfo, host, port, path, query, fragment).
    parts = getattr(request.url, "_uri_reference", None)
    if not isinstance(parts, tuple):
        return _decide(request, config)
    cached_for, routes = _route_cache
    if cached_for is not config:
        routes = {}
        _route_cache = (config, routes)
    key = (request.method, parts[0], parts[2], parts[3], parts[4])
    route = routes.get(key)
    if route is None:
        if len(routes) >= _MAX_ROUTES:
            routes.clear()
        route = routes[key] = _decide(request, config)
    return route


def _decide(request: Any, config: Config) -> _Route:
    url = _plain_url(request)
    return url, bound_for_payi(url, config), classify(request.method, request.url.host, request.url.path)


def _merge_given(
    request: Any, given: list[tuple[bytes, bytes]], frame: Frame, config: Config, proxied: bool
) -> dict[str, str]:
    """The caller's own Pay-i headers merged with the context's; put back on the request if proxied."""
    encoding = request.headers.encoding  # costly: it decodes every header
    explicit = {_canonical(k.decode(encoding)): v.decode(encoding) for k, v in given}
    headers = merge_headers(frame, explicit, proxied)
    if proxied:
        added = dict(headers)
        if config.api_key and not any(k.lower() == _API_KEY_LOWER for k in headers):
            added[_API_KEY] = config.api_key
        _add_headers(request.headers, added)
    return {k: v for k, v in headers.items() if k.lower() != _API_KEY_LOWER}


def _add_context_headers(
    target: Any, entries: list[tuple[bytes, bytes, bytes]] | None, frame: Frame, config: Config
) -> Mapping[str, str]:
    """Add the context's headers and the API key, encoded once per frame; return the headers
    (the key left out) as the scope's records share them."""
    wire = frame.wire
    if wire is None or wire[0] is not config.api_key:
        headers = fresh_headers(frame, True)  # cached here, in the frame's wire entries
        # Every name is one of Pay-i's (its encodings known) and every value printable ASCII, so
        # never a newline: all encoded in a few C calls rather than one by one.
        values = "\n".join(headers.values()).encode().split(b"\n") if headers else ()
        names = map(_WIRE_NAME.__getitem__, headers)
        encoded = [*zip(names, map(_WIRE_LOWER.__getitem__, headers), values, strict=True)]
        if config.api_key:
            encoded.append((_API_KEY_NAME, _API_KEY_WIRE_LOWER, config.api_key.encode()))
        wire = frame.wire = (config.api_key, tuple(encoded), headers)
    if entries is not None:
        entries.extend(wire[1])
    else:
        for name, _, value in wire[1]:
            target[name.decode()] = value.decode()
    return wire[2]


# Pay-i's header names as httpx keeps them (as given, and lower-case), encoded once.
_WIRE_NAME: dict[str, bytes] = {name: name.encode() for name in CANONICAL.values()}
_WIRE_LOWER: dict[str, bytes] = {name: low.encode() for low, name in CANONICAL.items()}
_API_KEY_NAME: Final = _WIRE_NAME[_API_KEY]
_API_KEY_WIRE_LOWER: Final = _WIRE_LOWER[_API_KEY]


def _entries(headers: Any) -> list[tuple[bytes, bytes, bytes]] | None:
    """httpx's and httpx2's own list of (name, lower-case name, value), where it is usable.

    Reading and extending it directly saves a search per header on every call; any other
    representation falls back to the public API.
    """
    entries = getattr(headers, "_list", None)
    if isinstance(entries, list) and getattr(headers, "_encoding", None) in (None, "ascii", "utf-8"):
        return entries
    return None


def _given_payi_headers(
    headers: Any, entries: list[tuple[bytes, bytes, bytes]] | None
) -> list[tuple[bytes, bytes]]:
    if entries is not None:
        # The usual case, in C. `find`, not `in`: bytes' `in` first tries its operand as an int,
        # raising and discarding a TypeError on every call.
        if b"\n".join(map(_LOWER_NAME, entries)).find(b"xproxy-") < 0:
            return []
        return [(name, value) for name, lower, value in entries if lower.startswith(b"xproxy-")]
    return [(k, v) for k, v in headers.raw if k[:7].lower() == b"xproxy-"]


def _add_headers(target: Any, added: dict[str, str]) -> None:
    """Add headers whose names `target` does not hold (every xProxy-* one was stripped before)."""
    entries = _entries(target)
    if entries is not None:
        entries.extend([(k.encode(), k.lower().encode(), v.encode()) for k, v in added.items()])
        return
    for name, value in added.items():
        target[name] = value


def guard_redirect(request: Any) -> None:
    """Strip every `xProxy-*` header (the API key too) from a request not bound for Pay-i.

    `begin()` decides for the request a caller sends; a client then sends others built from it
    (redirects it follows, with the first one's headers copied), each passing through here.
    """
    entries = _entries(request.headers)
    if not _given_payi_headers(request.headers, entries):
        return  # the usual case: nothing that could leak
    if not _route(request, current_config())[1]:
        _strip_payi_headers(request)


def _strip_payi_headers(request: Any) -> None:
    for key in {k.lower() for k in request.headers if k.lower().startswith("xproxy-")}:
        del request.headers[key]


def _with_body(request: Any, body: bytes) -> Any:
    stream = request.stream
    if hasattr(request, "_content") and type(stream).__name__ == "ByteStream":
        # A body given whole (the SDKs' JSON): replaced in place, for a rebuilt request costs
        # more than the rest of the call's tracking. Each retry builds its request anew.
        request.stream = type(stream)(body)
        request._content = body
        request.headers["content-length"] = str(len(body))
        return request
    headers = request.headers.copy()
    headers.pop("content-length", None)
    return type(request)(
        request.method, request.url, headers=headers, content=body, extensions=request.extensions
    )
