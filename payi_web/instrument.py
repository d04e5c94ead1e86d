"""`instrument()`: attach the tracking context to real OpenAI, Anthropic, httpx and httpx2 calls.

Each transport (payi_web/transports/) hooks where its library sends a request; providers
(payi_web/providers/) say what a GenAI call's bodies mean.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .transports import httpx as _httpx

__all__ = ["instrument", "is_instrumented", "uninstrument"]

C = TypeVar("C")


def instrument(client: C | None = None) -> C | None:
    """Instrument every httpx/httpx2-based client in the process, or only `client`.

    With no argument, patches `send` of httpx's and httpx2's `Client` and `AsyncClient`, which
    covers `openai.OpenAI`, `AsyncOpenAI`, `AzureOpenAI`, `anthropic.Anthropic`,
    `AsyncAnthropic` and plain clients, including ones created before this call; calling it
    again is harmless. With a client, instruments that client alone and returns it. Either way,
    each request the client then sends after the first (a redirect it follows) keeps Pay-i's
    headers and key only if it is bound for Pay-i too.
    """
    if client is None:
        _httpx.instrument()
        return None
    if not _httpx.instrument_client(client):
        raise TypeError(
            f"instrument(): {type(client).__name__} is neither an httpx/httpx2 client "
            "nor an SDK client built on one"
        )
    return client


def uninstrument(client: Any = None) -> None:
    """Undo `instrument()`: globally, or for one client."""
    if client is None:
        _httpx.uninstrument()
    else:
        _httpx.uninstrument_client(client)


def is_instrumented(client: Any = None) -> bool:
    """Whether `instrument()` is in force for the process (no argument) or for `client`."""
    return _httpx.is_instrumented(client)
