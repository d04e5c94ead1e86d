"""OpenAI and Azure OpenAI: chat completions, completions, embeddings and the Responses API."""

from __future__ import annotations

import re
from typing import Any

from ..core.records import Units
from .base import Endpoint, Provider, RequestFacts, StreamState, minus, optional_count, side_count

__all__ = ["AzureOpenAI", "OpenAI"]

_KINDS = (("/chat/completions", "chat"), ("/completions", "completions"), ("/embeddings", "embeddings"))
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)/")
# The two spellings of usage: chat, completions and embeddings; the Responses API.
_CHAT_KEYS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
# What the usage-only chunk payi-web asks for holds. One with anything else (Pay-i's proxy puts
# its `xproxy_result` on the last chunk) is the caller's too, and is passed on whole.
_USAGE_CHUNK_KEYS = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
        "service_tier",
        "obfuscation",
    }
)
_RESPONSES_KEYS = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def _kind(method: str, path: str) -> str | None:
    if method != "POST":
        return None
    path = path.rstrip("/")
    for suffix, kind in _KINDS:
        if path.endswith(suffix):
            return kind
    return "responses" if path.endswith("/responses") else None


class OpenAI(Provider):
    category = "system.openai"
    proxy_name = "openai"
    proxy_path = "/api/v1/proxy/openai/v1"

    def match(self, method: str, host: str, path: str) -> Endpoint | None:
        kind = _kind(method, path)
        return Endpoint(self, kind) if kind is not None else None

    def request_facts(self, endpoint: Endpoint, payload: dict[str, Any]) -> tuple[RequestFacts, bool]:
        facts, _ = super().request_facts(endpoint, payload)
        if not (facts.stream and endpoint.kind in ("chat", "completions")):
            return facts, False
        options = payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return facts, False
        # A stream reports its usage only when asked: asked on the caller's behalf, and the
        # extra chunk that brings it hidden from the caller.
        payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return facts._replace(added_usage=True), True

    def units(self, usage: Any) -> dict[str, Units]:
        if type(usage) is not dict:
            return {}
        if "prompt_tokens" in usage:
            keys = _CHAT_KEYS
        elif "input_tokens" in usage:
            keys = _RESPONSES_KEYS
        else:
            return {}
        input_key, output_key, input_details, output_details = keys
        prompt, completion = side_count(usage, input_key), side_count(usage, output_key)
        in_details, out_details = usage.get(input_details), usage.get(output_details)
        cache_read = optional_count(in_details.get("cached_tokens")) if type(in_details) is dict else 0
        reasoning = optional_count(out_details.get("reasoning_tokens")) if type(out_details) is dict else 0
        units = {"text": Units(minus(prompt, cache_read), minus(completion, reasoning))}
        if reasoning != 0:
            units["reasoning"] = Units(0, reasoning)
        if cache_read != 0:
            units["text_cache_read"] = Units(cache_read, 0)
        return units

    def stream_event(self, state: StreamState, payload: dict[str, Any], hide_added_usage: bool) -> bool:
        kind = payload.get("type")
        if isinstance(kind, str) and kind.startswith("response."):  # the Responses API
            response = payload.get("response")
            if isinstance(response, dict):
                facts = self.response_facts(response)
                state.response_id = facts.response_id or state.response_id
                state.model = facts.model or state.model
                if facts.units:
                    state.units = facts.units
            return True
        if state.response_id is None and isinstance(payload.get("id"), str):
            state.response_id = payload["id"]
        if state.model is None and isinstance(payload.get("model"), str):
            state.model = payload["model"]
        units = self.units(payload.get("usage"))
        if units:
            state.units = units
            if hide_added_usage and payload.get("choices") == [] and payload.keys() <= _USAGE_CHUNK_KEYS:
                return False
        return True


class AzureOpenAI(OpenAI):
    """OpenAI's API on Azure: a deployment in the path (often the only name of the model), an
    `*.openai.azure.com` host, or Pay-i's Azure proxy."""

    category = "system.azureopenai"
    proxy_name = "azure.openai"
    proxy_path = "/api/v1/proxy/azure.openai"

    def match(self, method: str, host: str, path: str) -> Endpoint | None:
        kind = _kind(method, path)
        if kind is None:
            return None
        deployment = _AZURE_DEPLOYMENT.search(path)
        if deployment or host.endswith(".openai.azure.com") or "/proxy/azure.openai" in path:
            return Endpoint(self, kind, deployment.group(1) if deployment else None)
        return None
