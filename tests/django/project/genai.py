"""The OpenAI clients the views use: real SDK clients, pointed by the tests at a fake provider."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

import openai

from payi_web.fake_provider import FakeProvider
from tests.instrumented import OPENAI_HTTP

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "summarise this"}]}


@dataclass
class Target:
    base_url: str
    provider: FakeProvider | None = None  # in-process (a MockTransport); None: over HTTP
    sync_client: openai.OpenAI | None = None
    async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = field(
        default_factory=weakref.WeakKeyDictionary
    )


target: Target | None = None


def use(base_url: str, provider: FakeProvider | None = None) -> None:
    global target
    target = Target(base_url, provider)


def client() -> openai.OpenAI:
    assert target is not None, "a test must call genai.use() first"
    if target.sync_client is None:
        http = (
            OPENAI_HTTP.Client(transport=target.provider.transport(OPENAI_HTTP)) if target.provider else None
        )
        target.sync_client = openai.OpenAI(
            api_key="sk-test", base_url=target.base_url, http_client=http, max_retries=0
        )
    return target.sync_client


def aclient() -> openai.AsyncOpenAI:
    """One per event loop: an async client's connections belong to the loop that opened them."""
    assert target is not None, "a test must call genai.use() first"
    loop = asyncio.get_running_loop()
    found = target.async_clients.get(loop)
    if found is None:
        transport = target.provider.transport(OPENAI_HTTP, asynchronous=True) if target.provider else None
        http = OPENAI_HTTP.AsyncClient(transport=transport) if transport else None
        found = openai.AsyncOpenAI(
            api_key="sk-test", base_url=target.base_url, http_client=http, max_retries=0
        )
        target.async_clients[loop] = found
    return found


def ask(prompt: str = "summarise this") -> str:
    reply = client().chat.completions.create(**{**CHAT, "messages": [{"role": "user", "content": prompt}]})
    return reply.choices[0].message.content or ""


async def aask(prompt: str = "summarise this") -> str:
    reply = await aclient().chat.completions.create(
        **{**CHAT, "messages": [{"role": "user", "content": prompt}]}
    )
    return reply.choices[0].message.content or ""


def stream(prompt: str = "stream this") -> Any:
    messages = [{"role": "user", "content": prompt}]
    for chunk in client().chat.completions.create(**{**CHAT, "messages": messages}, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


async def astream(prompt: str = "stream this") -> Any:
    messages = [{"role": "user", "content": prompt}]
    async for chunk in await aclient().chat.completions.create(**{**CHAT, "messages": messages}, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content
