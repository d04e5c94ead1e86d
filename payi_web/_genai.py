"""Recognising GenAI calls by their endpoint, and reading model, ids and usage from their bodies.

Everything here is pure parsing: no HTTP library, no I/O. Recording is by endpoint (whatever
the host, so OpenAI-compatible gateways and local servers count); header emission is decided
elsewhere, by host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .records import Units

__all__ = ["Endpoint", "StreamObserver", "classify", "prepare_body", "usage_from_json"]

OPENAI = "system.openai"
AZURE_OPENAI = "system.azureopenai"
ANTHROPIC = "system.anthropic"

_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)/")


@dataclass(frozen=True, slots=True)
class Endpoint:
    category: str
    kind: str  # "chat", "completions", "embeddings", "responses", "messages"
    deployment: str | None = None  # Azure OpenAI: the model is often only in the URL


def classify(method: str, host: str, path: str) -> Endpoint | None:
    """The GenAI endpoint a request is bound for, or None for any other request."""
    if method != "POST":
        return None
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        kind = "chat"
    elif path.endswith("/completions"):
        kind = "completions"
    elif path.endswith("/embeddings"):
        kind = "embeddings"
    elif path.endswith("/responses"):
        kind = "responses"
    elif path.endswith("/messages") and "/threads/" not in path:  # not OpenAI's Assistants threads
        return Endpoint(ANTHROPIC, "messages")
    else:
        return None
    deployment = _AZURE_DEPLOYMENT.search(path)
    if deployment or host.endswith(".openai.azure.com") or "/proxy/azure.openai" in path:
        return Endpoint(AZURE_OPENAI, kind, deployment.group(1) if deployment else None)
    return Endpoint(OPENAI, kind)


_decoder = json.JSONDecoder()


def parse_json(body: bytes) -> Any:
    """`json.loads(body)`: the same value, or a ValueError.

    A UTF-8 document goes through the decoder's public `raw_decode`, at a third of `json.loads`'
    cost on a small body (whose encoding detection and whitespace regexes run in Python): twice
    per call, request and response, that is ~10 µs, 1.6% of an in-process call. Anything else
    (another encoding, leading space, an error) is parsed, or refused, by `json.loads` itself.
    """
    try:
        text = body.decode("utf-8")
        value, end = _decoder.raw_decode(text)
    except ValueError:  # UnicodeDecodeError included
        return json.loads(body)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return json.loads(body)  # trailing data: json's own error
    return value


class RequestFacts(NamedTuple):
    model: str | None = None
    stream: bool = False
    # True when we asked for usage on the caller's behalf: the usage-only chunk must be hidden.
    added_usage: bool = False


_USAGE = b'"usage"'
_NO_USAGE = b'"usage":null'


def prepare_body(endpoint: Endpoint, body: bytes) -> tuple[RequestFacts, bytes | None]:
    """Read the model and stream flag; for an OpenAI chat/completions stream that did not ask for
    usage, ask on the caller's behalf. Returns the facts and the new body (None: unchanged)."""
    try:
        payload = parse_json(body) if body else None
    except ValueError:
        return RequestFacts(endpoint.deployment), None
    if not isinstance(payload, dict):
        return RequestFacts(endpoint.deployment), None
    model = payload.get("model")
    model = model if isinstance(model, str) and model else endpoint.deployment
    stream = payload.get("stream") is True
    if stream and endpoint.kind in ("chat", "completions"):
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            payload["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
            return RequestFacts(model, True, True), json.dumps(payload, separators=(",", ":")).encode()
    return RequestFacts(model, stream), None


def _count(value: Any) -> int | None:
    """A token count as reported: None (unknown) unless a non-negative int; NaN, a float, a
    negative number or a string is no count, and never a known 0."""
    return value if type(value) is int and value >= 0 else None


def _part(value: Any) -> int | None:
    """A count a provider may leave out (cache, reasoning): absent or null is none of it."""
    return 0 if value is None else _count(value)


def _side(usage: dict[str, Any], key: str) -> int | None:
    """One side's count: a side the provider leaves out (embeddings' output) is none of it."""
    return _count(usage[key]) if key in usage else 0


def _minus(total: int | None, part: int | None) -> int | None:
    return None if total is None or part is None else max(total - part, 0)


# OpenAI's two spellings: chat, completions and embeddings; the Responses API.
_CHAT_KEYS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
_RESPONSES_KEYS = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def units_from_usage(usage: Any, category: str) -> dict[str, Units]:
    """Pay-i's unit kinds from a provider's `usage` object; {} when there is none."""
    if type(usage) is not dict:
        return {}
    if category == ANTHROPIC:
        if "input_tokens" not in usage and "output_tokens" not in usage:
            return {}
        units = {"text": Units(_side(usage, "input_tokens"), _side(usage, "output_tokens"))}
        cache_read = _part(usage.get("cache_read_input_tokens"))
        cache_write = _part(usage.get("cache_creation_input_tokens"))
        if cache_read != 0:
            units["text_cache_read"] = Units(cache_read, 0)
        if cache_write != 0:
            units["text_cache_write"] = Units(cache_write, 0)
        return units
    if "prompt_tokens" in usage:
        keys = _CHAT_KEYS
    elif "input_tokens" in usage:
        keys = _RESPONSES_KEYS
    else:
        return {}
    input_key, output_key, input_details, output_details = keys
    prompt, completion = _side(usage, input_key), _side(usage, output_key)
    in_details, out_details = usage.get(input_details), usage.get(output_details)
    if not (in_details or out_details):  # a plain call: one kind, the fewest steps
        return {"text": Units(prompt, completion)}
    cache_read = _part(in_details.get("cached_tokens")) if type(in_details) is dict else 0
    reasoning = _part(out_details.get("reasoning_tokens")) if type(out_details) is dict else 0
    units = {"text": Units(_minus(prompt, cache_read), _minus(completion, reasoning))}
    if reasoning != 0:
        units["reasoning"] = Units(0, reasoning)
    if cache_read != 0:
        units["text_cache_read"] = Units(cache_read, 0)
    return units


class ResponseFacts(NamedTuple):
    units: dict[str, Units]
    response_id: str | None = None
    model: str | None = None


def usage_from_json(payload: Any, category: str) -> ResponseFacts:
    """Usage, id and model of a complete (non-streamed) JSON response."""
    if not isinstance(payload, dict):
        return ResponseFacts({})
    response_id = payload.get("id")
    model = payload.get("model")
    return ResponseFacts(
        units_from_usage(payload.get("usage"), category),
        response_id if isinstance(response_id, str) else None,
        model if isinstance(model, str) else None,
    )


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class StreamObserver:
    """Watches a server-sent-events body pass by: usage, response id, time of the first event,
    and (when usage was asked for on the caller's behalf) drops the usage-only chunk."""

    def __init__(self, category: str, hide_usage_chunk: bool, clock: Callable[[], float]) -> None:
        self.category = category
        self.hide_usage_chunk = hide_usage_chunk
        self.clock = clock
        self.first_event_at: float | None = None
        self.units: dict[str, Units] = {}
        self.response_id: str | None = None
        self.model: str | None = None
        self._buffer = b""
        self._anthropic_usage: dict[str, Any] = {}
        # An error event mid-stream: the SDK raises it to the caller, so the call failed.
        self.failed = False

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
        if line.startswith(b"data:") and line.find(b"\n") < 0 and line.find(b"\r") < 0:
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
        maybe_error = data.find(b'"error"') >= 0
        if not maybe_error and self.response_id is not None and data.count(_USAGE) == data.count(_NO_USAGE):
            return True  # a content event (OpenAI's say "usage":null): nothing for the record
        try:
            payload = parse_json(data)
        except ValueError:
            return True
        if not isinstance(payload, dict):
            return True
        if maybe_error and (payload.get("error") or payload.get("type") == "error"):
            self.failed = True  # OpenAI's `{"error": {...}}` event, the Responses API's "error"
        if self.category == ANTHROPIC:
            self._anthropic(payload)
            return True
        return self._openai(payload)

    def _openai(self, payload: dict[str, Any]) -> bool:
        kind = payload.get("type")
        if isinstance(kind, str) and kind.startswith("response."):  # the Responses API
            response = payload.get("response")
            if isinstance(response, dict):
                facts = usage_from_json(response, self.category)
                self.response_id = facts.response_id or self.response_id
                self.model = facts.model or self.model
                if facts.units:
                    self.units = facts.units
            return True
        if self.response_id is None and isinstance(payload.get("id"), str):
            self.response_id = payload["id"]
        if self.model is None and isinstance(payload.get("model"), str):
            self.model = payload["model"]
        units = units_from_usage(payload.get("usage"), self.category)
        if units:
            self.units = units
            if self.hide_usage_chunk and payload.get("choices") == []:
                return False
        return True

    def _anthropic(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        usage: Any = None
        if kind == "message_start" and isinstance(payload.get("message"), dict):
            message = payload["message"]
            if isinstance(message.get("id"), str):
                self.response_id = message["id"]
            if isinstance(message.get("model"), str):
                self.model = message["model"]
            usage = message.get("usage")
        elif kind == "message_delta":
            usage = payload.get("usage")
        if isinstance(usage, dict):
            # message_start carries the input side, message_delta running totals: the latest
            # value of each field wins, so nothing is counted twice.
            self._anthropic_usage.update({k: v for k, v in usage.items() if v is not None})
            self.units = units_from_usage(self._anthropic_usage, ANTHROPIC)
