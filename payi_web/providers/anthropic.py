"""Anthropic: the Messages API, plain and streamed."""

from __future__ import annotations

from typing import Any

from ..core.records import Units
from .base import Endpoint, Provider, StreamState, optional_count, side_count

__all__ = ["Anthropic"]

_LARGE_CONTEXT = 200_000  # input tokens, cache included


class Anthropic(Provider):
    category = "system.anthropic"
    proxy_name = "anthropic"
    proxy_path = "/api/v1/proxy/anthropic"

    def match(self, method: str, host: str, path: str) -> Endpoint | None:
        path = path.rstrip("/")
        # Not OpenAI's Assistants API, whose thread messages end the same way.
        if method == "POST" and path.endswith("/messages") and "/threads/" not in path:
            return Endpoint(self, "messages")
        return None

    def units(self, usage: Any) -> dict[str, Units]:
        """Pay-i's unit kinds, as Pay-i's SDK computes them: a call whose input (cache included)
        reaches 200k tokens is priced as large-context, in kinds of their own; cache writes
        split by lifetime (5 minutes, 1 hour); web searches counted."""
        if type(usage) is not dict or ("input_tokens" not in usage and "output_tokens" not in usage):
            return {}
        text_in, text_out = side_count(usage, "input_tokens"), side_count(usage, "output_tokens")
        cache_read = optional_count(usage.get("cache_read_input_tokens"))
        cache_write = optional_count(usage.get("cache_creation_input_tokens"))
        known_input = [n for n in (text_in, cache_read, cache_write) if n is not None]
        large = "_large_context" if sum(known_input) >= _LARGE_CONTEXT else ""
        units = {"text" + large: Units(text_in, text_out)}
        by_lifetime = usage.get("cache_creation")
        write_5m = (
            optional_count(by_lifetime.get("ephemeral_5m_input_tokens")) if type(by_lifetime) is dict else 0
        )
        write_1h = (
            optional_count(by_lifetime.get("ephemeral_1h_input_tokens")) if type(by_lifetime) is dict else 0
        )
        if write_5m or write_1h:
            if write_5m != 0:
                units["text_cache_write" + large] = Units(write_5m, 0)
            if write_1h != 0:
                units["text_cache_write_1h" + large] = Units(write_1h, 0)
        elif cache_write != 0:
            units["text_cache_write" + large] = Units(cache_write, 0)
        if cache_read != 0:
            units["text_cache_read" + large] = Units(cache_read, 0)
        searches = _nested_count(usage, "server_tool_use", "web_search_requests")
        if searches != 0:
            units["web_search_request"] = Units(0, searches)
        return units

    def stream_event(self, state: StreamState, payload: dict[str, Any], hide_added_usage: bool) -> bool:
        kind = payload.get("type")
        usage: Any = None
        message = payload.get("message")
        if kind == "message_start" and isinstance(message, dict):
            if isinstance(message.get("id"), str):
                state.response_id = message["id"]
            if isinstance(message.get("model"), str):
                state.model = message["model"]
            usage = message.get("usage")
        elif kind == "message_delta":
            usage = payload.get("usage")
        if isinstance(usage, dict):
            # message_start carries the input side, message_delta running totals: the latest
            # value of each field wins, so nothing is counted twice.
            state.usage.update({k: v for k, v in usage.items() if v is not None})
            state.units = self.units(state.usage)
        return True


def _nested_count(usage: dict[str, Any], outer: str, inner: str) -> int | None:
    details = usage.get(outer)
    return optional_count(details.get(inner)) if type(details) is dict else 0
