"""One GenAI call in flight, whatever carries it: where it is bound, its Pay-i headers, and the
record it leaves when it ends.

A transport (httpx, httpx2; later botocore) asks `route()` what a request is, `attribution()`
which headers it carries, opens a `Call` for a GenAI endpoint, and feeds it the response.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

from ..core import records
from ..core.config import Config
from ..core.context import Frame
from ..core.headers import CANONICAL, PayiHeaders, context_headers, merge_headers
from ..core.log import warn_once
from ..providers import Endpoint, RequestFacts, ResponseFacts, StreamObserver, classify, parse_json

__all__ = ["Call", "Route", "attribution", "bound_for_payi", "route"]

_MAX_BUFFERED_BODY = 8 * 1024 * 1024
_API_KEY = PayiHeaders.API_KEY
_API_KEY_LOWER = _API_KEY.lower()
_NO_FACTS = ResponseFacts({})


class Route(NamedTuple):
    url: str  # scheme, host, port and path: no query, which may hold secrets
    payi_bound: bool  # under Pay-i's base URL or a header host: it gets the headers and the key
    endpoint: Endpoint | None  # the GenAI endpoint it calls, if any


def bound_for_payi(url: str, config: Config) -> bool:
    """Whether `url` (without query) is under the Pay-i base URL or one of the header hosts."""
    for prefix in (config.base_url, *config.header_hosts):
        if url == prefix or url.startswith(prefix + "/"):
            return True
    return False


# Decided once per method and URL for the configuration in force: an app calls the same few
# endpoints, and each decision reads the URL several times.
_MAX_ROUTES = 1024
_routes: tuple[Config | None, dict[tuple[str, str, str, str], Route]] = (None, {})


def route(method: str, scheme: str, netloc: str, host: str, path: str, config: Config) -> Route:
    global _routes
    cached_for, routes = _routes
    if cached_for is not config:
        routes = {}
        _routes = (config, routes)
    key = (method, scheme, netloc, path)
    found = routes.get(key)
    if found is None:
        if len(routes) >= _MAX_ROUTES:
            routes.clear()
        url = f"{scheme}://{netloc}{path}"
        found = routes[key] = Route(url, bound_for_payi(url, config), classify(method, host, path))
    return found


def attribution(
    frame: Frame, given: Mapping[str, str], payi_bound: bool, api_key: str | None
) -> tuple[Mapping[str, str] | None, Mapping[str, str] | None]:
    """The headers to put on a request (None: none) and the attribution its record keeps (None:
    the scope's own, if the call is recorded). `given`: the caller's own `xProxy-*` headers,
    already taken off the request; they go back, merged, only to Pay-i-bound hosts."""
    if given:
        given = {CANONICAL.get(name.lower(), name): value for name, value in given.items()}
        merged = merge_headers(frame, given, payi_bound)
        kept = {k: v for k, v in merged.items() if k.lower() != _API_KEY_LOWER}
        if not payi_bound:
            return None, kept
        if api_key and len(kept) == len(merged):  # the caller set no key of its own
            merged[_API_KEY] = api_key
        return merged, kept
    if not payi_bound:
        return None, None
    headers = context_headers(frame, True)  # made once per frame
    return ({**headers, _API_KEY: api_key} if api_key else headers), headers


class Call:
    """A GenAI call in flight: what is needed to build its record when it ends."""

    def __init__(
        self, where: Route, endpoint: Endpoint, method: str, frame: Frame, facts: RequestFacts,
        headers: Mapping[str, str] | None,
    ) -> None:  # fmt: skip
        self.where, self.endpoint, self.method, self.frame, self.facts = where, endpoint, method, frame, facts
        # The attribution the record keeps: the headers sent (the key left out), else the scope's.
        self.headers = headers if headers is not None else context_headers(frame, False)
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

    def on_response(self, status: int, content_type: str) -> None:
        """The status and content type arrived; the body follows (`whole_body`, or `feed`...)."""
        self.status = status
        if self.facts.stream or "text/event-stream" in content_type:
            hide = self.facts.added_usage and status < 400
            self._observer = StreamObserver(self.endpoint, hide, time.perf_counter)
        else:
            self._buffer = bytearray()

    def whole_body(self, body: bytes) -> bytes:
        """A body read in whole: observed, and the call finished. Returns what the caller gets."""
        out = body
        if self._observer is not None:
            out = self._observer.feed(body) + self._observer.finish()
        else:
            self._take_json(body)
        self._buffer = None
        self.finish()
        return out

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
                self._take_json(bytes(self._buffer))
        except Exception:
            warn_once("observe-stream", "payi_web: could not observe a response stream", exc_info=True)
        self.finish()
        return tail

    def _take_json(self, body: bytes) -> None:
        if self.status is None or self.status >= 400:  # an error body holds no usage
            return
        try:
            payload = parse_json(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            self.response_facts = self.endpoint.provider.response_facts(payload)
        else:
            self._unusable = True

    # --- the record -----------------------------------------------------------------------

    def finish(self, error: bool = False) -> None:
        """Build the record once and hand it to the sinks (idempotent)."""
        if self._done:
            return
        self._done = True
        try:
            records.emit(self._record(error))
        except Exception:
            warn_once("build-record", "payi_web: could not build a call record", exc_info=True)

    def _record(self, error: bool) -> records.CallRecord:
        observer = self._observer
        first_token = None
        if observer is None:
            units, response_id, model = self.response_facts
        else:
            units, response_id, model = observer.units, observer.response_id, observer.model
            if observer.first_event_at is not None:
                first_token = (observer.first_event_at - self.start) * 1000
        status = self.status
        failed = (  # what the caller saw
            error
            or status is None
            or status >= 400
            or self._unusable
            or (observer is not None and observer.failed)
        )
        return records.CallRecord(
            timestamp=self.started_at,
            category=self.endpoint.category,
            resource=self.facts.model or model,  # the model the caller asked for wins
            method=self.method,
            url=self.where.url,
            status=status,
            latency_ms=(time.perf_counter() - self.start) * 1000,
            time_to_first_token_ms=first_token,
            response_id=response_id,
            failed=failed,
            streamed=observer is not None,
            proxied=self.where.payi_bound,
            context=self.frame.record_snapshot(),
            units=units,
            headers=self.headers,
        )
