"""The GenAI calls the harness's views make, and payi-web's API or no-op stand-ins for it.

With `PAYI_LOAD=off` nothing of payi-web is imported: `track`, `track_context` and
`bind_context` are no-ops, so the "off" server runs the same view code without payi-web.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai

from bench.load.plans import ENV_PROVIDER, MODEL, payi_on, prompt

PAYI_ON = payi_on()

if PAYI_ON:
    from payi_web import bind_context, patch_thread_pool, track, track_context
else:

    def track(func: Any = None, /, **fields: Any) -> Any:
        return func if func is not None else (lambda fn: fn)

    def track_context(**fields: Any) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def bind_context(fn: Any) -> Any:
        return fn

    def patch_thread_pool() -> None:
        pass


__all__ = [
    "PAYI_ON",
    "aask",
    "ask",
    "astream",
    "bind_context",
    "patch_thread_pool",
    "stream",
    "track",
    "track_context",
]

_sync: openai.OpenAI | None = None
_async: dict[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = {}


def _base_url() -> str:
    return os.environ[ENV_PROVIDER] + "/v1"


def client() -> openai.OpenAI:
    global _sync
    if _sync is None:
        _sync = openai.OpenAI(api_key="sk-load", base_url=_base_url(), max_retries=0, timeout=60)
    return _sync


def aclient() -> openai.AsyncOpenAI:
    """One per event loop (an async client's connections belong to its loop)."""
    loop = asyncio.get_running_loop()
    found = _async.get(loop)
    if found is None:
        found = _async[loop] = openai.AsyncOpenAI(
            api_key="sk-load", base_url=_base_url(), max_retries=0, timeout=60
        )
    return found


def _messages(request_id: str, kind: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt(request_id, kind)}]


def ask(request_id: str, kind: str) -> str:
    """One sync chat completion, in a scope that adds the call's kind to the request properties."""
    with track_context(request_properties={"call": kind}):
        reply = client().chat.completions.create(model=MODEL, messages=_messages(request_id, kind))  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


def bound_ask(request_id: str, kind: str) -> Callable[[], str]:
    """`ask`, for a thread-pool worker: bound here, in the request's scope, to run there."""
    with track_context(request_properties={"call": kind}):
        return bind_context(lambda: ask_in_scope(request_id, kind))


def ask_in_scope(request_id: str, kind: str) -> str:
    reply = client().chat.completions.create(model=MODEL, messages=_messages(request_id, kind))  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


async def aask(request_id: str, kind: str) -> str:
    with track_context(request_properties={"call": kind}):
        reply = await aclient().chat.completions.create(model=MODEL, messages=_messages(request_id, kind))  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


@track(request_properties={"call": "s"})
def stream(request_id: str, before: list[str]) -> Iterator[str]:
    """The response body: what earlier calls answered, then a streamed call's text as it arrives."""
    for text in before:
        yield text + "\n"
    chunks = client().chat.completions.create(model=MODEL, messages=_messages(request_id, "s"), stream=True)  # type: ignore[arg-type]
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content
    yield "\n"


@track(request_properties={"call": "s"})
async def astream(request_id: str, before: list[str]) -> AsyncIterator[str]:
    for text in before:
        yield text + "\n"
    chunks = await aclient().chat.completions.create(
        model=MODEL,
        messages=_messages(request_id, "s"),  # type: ignore[arg-type]
        stream=True,
    )
    async for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content
    yield "\n"
