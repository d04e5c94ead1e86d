"""A server-sent-events body watched as it passes to the caller: its framing, its first event's
time and its error events here; what each event means, in the provider's `stream_event`."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..core.records import Units
from .base import Endpoint, StreamState, parse_json

__all__ = ["StreamObserver"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_USAGE = b'"usage"'
_NO_USAGE = b'"usage":null'


class StreamObserver:
    """Watches a server-sent-events body pass by: usage, response id, time of the first event,
    errors, and (when usage was asked for on the caller's behalf) drops the usage-only chunk."""

    def __init__(self, endpoint: Endpoint, hide_added_usage: bool, clock: Callable[[], float]) -> None:
        self.provider = endpoint.provider
        self.hide_added_usage = hide_added_usage
        self.clock = clock
        self.first_event_at: float | None = None
        self.state = StreamState()
        # An error event mid-stream: the SDK raises it to the caller, so the call failed.
        self.failed = False
        self._buffer = b""

    @property
    def units(self) -> dict[str, Units]:
        return self.state.units

    @property
    def response_id(self) -> str | None:
        return self.state.response_id

    @property
    def model(self) -> str | None:
        return self.state.model

    def feed(self, chunk: bytes) -> bytes:
        """Observe `chunk`; return the bytes to pass on to the caller."""
        self._buffer += chunk
        out: list[bytes] = []
        start = 0
        for match in _EVENT_END.finditer(self._buffer):
            event = self._buffer[start : match.end()]
            start = match.end()
            if self._observe(event):
                out.append(event)
        self._buffer = self._buffer[start:]
        return b"".join(out)

    def finish(self) -> bytes:
        """The bytes still held (an unterminated last event), observed and passed on."""
        rest, self._buffer = self._buffer, b""
        return rest if rest and self._observe(rest) else b""

    def _observe(self, event: bytes) -> bool:
        line = event.rstrip(b"\r\n")
        if line.startswith(b"data:") and b"\n" not in line and b"\r" not in line:
            data = line[5:].lstrip()  # the usual event: one data line
        else:
            lines = event.splitlines()
            data = b"\n".join(x[5:].lstrip() for x in lines if x.startswith(b"data:"))
            if b"event: error" in lines or b"event:error" in lines:  # Anthropic's, the Assistants'
                self.failed = True
        if not data:
            return True
        if self.first_event_at is None:
            self.first_event_at = self.clock()
        if data == b"[DONE]":
            return True
        maybe_error = b'"error"' in data
        if (
            not maybe_error
            and self.state.response_id is not None
            and data.count(_USAGE) == data.count(_NO_USAGE)
        ):
            # A content event (OpenAI's say "usage":null, Anthropic's have none) once the stream's
            # id is known: nothing in it for the record, and most events are such.
            return True
        try:
            payload = parse_json(data)
        except ValueError:
            return True
        if not isinstance(payload, dict):
            return True
        if maybe_error and (payload.get("error") or payload.get("type") == "error"):
            self.failed = True  # OpenAI's `{"error": {...}}` event, the Responses API's "error"
        return self.provider.stream_event(self.state, payload, self.hide_added_usage)
