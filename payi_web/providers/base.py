"""What every GenAI provider module gives payi-web: which requests are its calls, and what their
bodies say (model, stream flag, usage as Pay-i's unit kinds, response id, stream events).

Pure parsing: no HTTP library and no I/O here, so one provider serves every transport.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from ..core.records import Units

__all__ = [
    "Endpoint",
    "Provider",
    "RequestFacts",
    "ResponseFacts",
    "StreamState",
    "minus",
    "optional_count",
    "parse_json",
    "side_count",
    "token_count",
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A GenAI endpoint a request is bound for: its provider, its kind ("chat", "messages", ...)."""

    provider: Provider
    kind: str
    deployment: str | None = None  # Azure OpenAI: the model is often only in the URL

    @property
    def category(self) -> str:
        return self.provider.category


class RequestFacts(NamedTuple):
    model: str | None = None
    stream: bool = False
    # True when we asked for usage on the caller's behalf: the usage-only chunk must be hidden.
    added_usage: bool = False


class ResponseFacts(NamedTuple):
    units: dict[str, Units]
    response_id: str | None = None
    model: str | None = None


@dataclass(slots=True)
class StreamState:
    """What a provider learns from a stream's events, event by event."""

    units: dict[str, Units] = field(default_factory=dict)
    response_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)  # running totals, where a provider needs them


class Provider:
    """One GenAI provider. Subclasses set `category` and override what differs."""

    category: ClassVar[str]
    # Its name for `proxy_url()` and the path of Pay-i's proxy for it, if Pay-i proxies it.
    proxy_name: ClassVar[str | None] = None
    proxy_path: ClassVar[str | None] = None

    def match(self, method: str, host: str, path: str) -> Endpoint | None:
        """The endpoint of this provider a request is bound for, or None."""
        raise NotImplementedError

    def request_facts(self, endpoint: Endpoint, payload: dict[str, Any]) -> tuple[RequestFacts, bool]:
        """The request's model and stream flag; True as well if `payload` was changed (e.g. to ask
        for usage on the caller's behalf) and must be sent instead of the caller's body."""
        model = payload.get("model")
        model = model if isinstance(model, str) and model else endpoint.deployment
        return RequestFacts(model, payload.get("stream") is True), False

    def units(self, usage: Any) -> dict[str, Units]:
        """Pay-i's unit kinds from the provider's `usage` object; {} when there is none."""
        raise NotImplementedError

    def response_facts(self, payload: dict[str, Any]) -> ResponseFacts:
        """Usage, id and model of a complete (non-streamed) JSON response."""
        response_id = payload.get("id")
        model = payload.get("model")
        return ResponseFacts(
            self.units(payload.get("usage")),
            response_id if isinstance(response_id, str) else None,
            model if isinstance(model, str) else None,
        )

    def stream_event(self, state: StreamState, payload: dict[str, Any], hide_added_usage: bool) -> bool:
        """Take what one stream event says; False to hide it from the caller."""
        raise NotImplementedError


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


def token_count(value: Any) -> int | None:
    """A token count as reported: None (unknown) unless a non-negative int; NaN, a float, a
    negative number or a string is no count, and never a known 0."""
    return value if type(value) is int and value >= 0 else None


def optional_count(value: Any) -> int | None:
    """A count a provider may leave out (cache, reasoning): absent or null is none of it."""
    return 0 if value is None else token_count(value)


def side_count(usage: dict[str, Any], key: str) -> int | None:
    """One side's count: a side the provider leaves out (embeddings' output) is none of it."""
    return token_count(usage[key]) if key in usage else 0


def minus(total: int | None, part: int | None) -> int | None:
    return None if total is None or part is None else max(total - part, 0)
