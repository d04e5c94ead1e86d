"""Anthropic: the Messages API, plain and streamed."""

from __future__ import annotations

from typing import Any

from ..records import Units
from .base import Endpoint, Provider, StreamState, optional_count, side_count

__all__ = ["Anthropic"]


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
        if type(usage) is not dict or ("input_tokens" not in usage and "output_tokens" not in usage):
            return {}
        units = {"text": Units(side_count(usage, "input_tokens"), side_count(usage, "output_tokens"))}
        cache_read = optional_count(usage.get("cache_read_input_tokens"))
        cache_write = optional_count(usage.get("cache_creation_input_tokens"))
        if cache_read != 0:
            units["text_cache_read"] = Units(cache_read, 0)
        if cache_write != 0:
            units["text_cache_write"] = Units(cache_write, 0)
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
