"""GenAI providers: one module each, registered here in the order they are asked.

`classify()` finds the provider endpoint a request is bound for, whatever the host (so
OpenAI-compatible gateways and local servers count); `prepare_body()` reads a request body's
facts. Header emission is decided elsewhere, by host.
"""

from __future__ import annotations

import json

from ..core.config import current_config
from .anthropic import Anthropic
from .base import Endpoint, Provider, RequestFacts, ResponseFacts, StreamState, parse_json
from .openai import AzureOpenAI, OpenAI
from .sse import StreamObserver

__all__ = [
    "Endpoint",
    "Provider",
    "RequestFacts",
    "ResponseFacts",
    "StreamObserver",
    "StreamState",
    "classify",
    "parse_json",
    "prepare_body",
    "proxy_url",
    "register",
]

# Azure before OpenAI: the same paths, told apart by deployment, host or Pay-i's proxy path.
_providers: list[Provider] = [AzureOpenAI(), OpenAI(), Anthropic()]


def register(provider: Provider) -> None:
    """Ask `provider` about every request, before the built-in ones (once)."""
    if not any(type(known) is type(provider) for known in _providers):
        _providers.insert(0, provider)


# Pay-i proxies these too; their calls are not read yet (no provider module).
_PROXY_ONLY = {"aws.bedrock": "/api/v1/proxy/aws.bedrock"}


def proxy_url(provider: str) -> str:
    """The Pay-i proxy's base URL for `provider`: e.g. `OpenAI(base_url=payi_web.proxy_url("openai"))`."""
    paths = {p.proxy_name: p.proxy_path for p in _providers if p.proxy_name and p.proxy_path}
    paths.update(_PROXY_ONLY)
    path = paths.get(provider)
    if path is None:
        raise ValueError(f"proxy_url(): unknown provider {provider!r}; known: {', '.join(paths)}")
    return current_config().base_url + path


def classify(method: str, host: str, path: str) -> Endpoint | None:
    """The GenAI endpoint a request is bound for, or None for any other request."""
    for provider in _providers:
        endpoint = provider.match(method, host, path)
        if endpoint is not None:
            return endpoint
    return None


def prepare_body(endpoint: Endpoint, body: bytes) -> tuple[RequestFacts, bytes | None]:
    """The request body's facts, and the body to send instead of it (None: the caller's own)."""
    try:
        payload = parse_json(body) if body else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return RequestFacts(endpoint.deployment), None
    facts, changed = endpoint.provider.request_facts(endpoint, payload)
    return facts, json.dumps(payload, separators=(",", ":")).encode() if changed else None
