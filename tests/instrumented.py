"""Shared helpers for the instrumented-client tests: real SDK clients on a fake provider."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai

import payi_web
from payi_web.fake_provider import FakeProvider

PAYI = "https://api.pay-i.com"

# openai >= 3 and anthropic >= 1 are built on httpx2 (openai 3 still accepts an httpx client);
# older releases (the matrix's openai 1/2 and anthropic 0.x envs, .ci/matrix) on httpx only.
OPENAI_HTTP: Any = httpx2 if int(openai.__version__.split(".")[0]) >= 3 else httpx
OPENAI_LIBS: list[Any] = [httpx2, httpx] if OPENAI_HTTP is httpx2 else [httpx]
ANTHROPIC_HTTP: Any = httpx2 if int(anthropic.__version__.split(".")[0]) >= 1 else httpx


def openai_client(provider: FakeProvider, base_url: str, *, lib: Any = None, **kwargs: Any) -> openai.OpenAI:
    """A real openai.OpenAI client whose HTTP goes to `provider` in-process (httpx2 or httpx)."""
    lib = lib or OPENAI_HTTP
    http = lib.Client(transport=provider.transport(lib))
    return openai.OpenAI(api_key="sk-test", base_url=base_url, http_client=http, max_retries=0, **kwargs)


def async_openai_client(provider: FakeProvider, base_url: str, *, lib: Any = None) -> openai.AsyncOpenAI:
    lib = lib or OPENAI_HTTP
    http = lib.AsyncClient(transport=provider.transport(lib, asynchronous=True))
    return openai.AsyncOpenAI(api_key="sk-test", base_url=base_url, http_client=http, max_retries=0)


def anthropic_client(provider: FakeProvider, base_url: str) -> anthropic.Anthropic:
    http = ANTHROPIC_HTTP.Client(transport=provider.transport(ANTHROPIC_HTTP))
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=base_url, http_client=http, max_retries=0)


def async_anthropic_client(provider: FakeProvider, base_url: str) -> anthropic.AsyncAnthropic:
    http = ANTHROPIC_HTTP.AsyncClient(transport=provider.transport(ANTHROPIC_HTTP, asynchronous=True))
    return anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=base_url, http_client=http, max_retries=0)


def proxy_openai(provider: FakeProvider, **kwargs: Any) -> openai.OpenAI:
    return openai_client(provider, payi_web.proxy_url("openai"), **kwargs)


CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "summarise this"}]}

__all__ = ["ANTHROPIC_HTTP", "CHAT", "OPENAI_HTTP", "OPENAI_LIBS", "PAYI"]
