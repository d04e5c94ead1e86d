"""The demo's one GenAI client, and what each page shows about the calls it made.

The backend comes from the environment:

- no `OPENAI_API_KEY`: the *offline demo model* (`payi_web.fake_provider.FakeProvider`),
  reached in-process through the real `openai.OpenAI` client: deterministic answers derived
  from the prompt, plausible token counts, real streaming, and nothing leaves this machine.
  Its URL is a Pay-i header host, so the Pay-i headers are really attached to its requests;
- `OPENAI_API_KEY`: OpenAI itself (the calls are recorded, but OpenAI gets no `xProxy-*` header);
- `OPENAI_API_KEY` and `PAYI_API_KEY`: OpenAI through the Pay-i proxy, with the headers.

This module knows nothing of Django or Flask: example_django's `settings.py` and example_flask's
`create_app()` ask it for the Pay-i settings of the backend (`PAYI` keys / `PAYI_*` config).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from typing import Any

import openai

import payi_web
from payi_web import CallRecord, get_context
from payi_web.core.config import current_config
from payi_web.fake_provider import FakeProvider

OFFLINE = "offline"
OPENAI = "openai"
PAYI_PROXY = "payi-proxy"

LABELS = {
    OFFLINE: "offline demo model",
    OPENAI: "OpenAI",
    PAYI_PROXY: "OpenAI through the Pay-i proxy",
}
# Not a real host: the offline model answers in-process, through the openai client's transport.
OFFLINE_MODEL_URL = "http://offline-demo-model/v1"
MODEL = os.environ.get("DEMO_MODEL", "gpt-4o-mini")
# USD per million tokens, for the ledger's estimated cost (payi-web ships no prices).
PRICES = {"gpt-4o-mini": (0.15, 0.60)}


def select_backend(environ: Mapping[str, str] = os.environ) -> str:
    if not environ.get("OPENAI_API_KEY"):
        return OFFLINE
    return PAYI_PROXY if environ.get("PAYI_API_KEY") else OPENAI


def payi_settings(backend: str) -> dict[str, Any]:
    """The Pay-i settings that depend on the backend."""
    if backend == OFFLINE:
        return {"HEADER_HOSTS": [OFFLINE_MODEL_URL]}  # the headers go to the offline model too
    if backend == PAYI_PROXY:
        return {"PROXY": True}  # calls go through the proxy: Pay-i sees them there
    return {}


_lock = threading.Lock()
_client: openai.OpenAI | None = None
_offline_model: FakeProvider | None = None


def offline_model() -> FakeProvider:
    """The offline model. Its `received` list holds the last requests it got, with their headers."""
    global _offline_model
    with _lock:
        if _offline_model is None:
            delay = float(os.environ.get("DEMO_STREAM_DELAY", "0.04"))  # so that you see it stream
            _offline_model = FakeProvider(stream_delay=delay, received=deque(maxlen=500))  # type: ignore[arg-type]
        return _offline_model


def _http_library() -> Any:
    # openai >= 3 is built on httpx2, earlier releases on httpx.
    if int(openai.__version__.split(".")[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx


def client() -> openai.OpenAI:
    """The one OpenAI client, made on first use (after the Pay-i settings were applied)."""
    global _client
    if _client is None:
        backend = select_backend()
        if backend == OFFLINE:
            http = _http_library()
            made = openai.OpenAI(
                api_key="offline-demo",
                base_url=OFFLINE_MODEL_URL,
                http_client=http.Client(transport=offline_model().transport(http)),
                max_retries=0,
            )
        elif backend == PAYI_PROXY:
            made = openai.OpenAI(base_url=payi_web.proxy_url("openai"))
        else:
            made = openai.OpenAI()
        payi_web.instrument(made)  # the settings instrument every client already; harmless again
        with _lock:
            if _client is None:
                _client = made
    return _client


def ask(system: str, user: str) -> str:
    reply = client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
    )
    return reply.choices[0].message.content or ""


def ask_streamed(system: str, user: str) -> Iterator[str]:
    """The answer's pieces as the model produces them. The call is sent at once, read as iterated."""
    stream = client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        stream=True,
    )

    def pieces() -> Iterator[str]:
        with stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    return pieces()


# --- what a page shows: the calls of its use case --------------------------------------------


class RecentCalls:
    """A sink keeping the call records of the last use case instances, by use case instance id.

    Every `@track(use_case_name=...)` view call is a new use case instance with its own id, so a
    page finds the calls it made, even while other requests make theirs.
    """

    def __init__(self, keep: int = 500) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._by_use_case: OrderedDict[str, list[CallRecord]] = OrderedDict()

    def record(self, call: CallRecord) -> None:
        key = call.context.use_case_id
        if key is None:
            return
        with self._lock:
            self._by_use_case.setdefault(key, []).append(call)
            self._by_use_case.move_to_end(key)
            while len(self._by_use_case) > self._keep:
                self._by_use_case.popitem(last=False)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def of(self, use_case_id: str | None) -> list[CallRecord]:
        with self._lock:
            return list(self._by_use_case.get(use_case_id or "", ()))


recent_calls = RecentCalls()
payi_web.add_sink(recent_calls)  # adding it again (a reload) does nothing


def describe(call: CallRecord) -> dict[str, Any]:
    """What a page shows of one call: its Pay-i context, and the Pay-i headers that went out."""
    ctx = call.context
    # Only requests bound for Pay-i (its proxy, or a header host) carry the headers.
    sent = call.headers if call.proxied else {}
    headers = dict(sorted(sent.items(), key=lambda item: item[0].lower()))
    if call.proxied and current_config().api_key:
        headers["xProxy-api-key"] = "(redacted)"  # sent, never shown
    return {
        "use_case_name": ctx.use_case_name,
        "use_case_id": ctx.use_case_id,
        "use_case_step": ctx.use_case_step,
        "user_id": ctx.user_id,
        "account_name": ctx.account_name,
        "limit_ids": list(ctx.limit_ids or ()),
        "request_properties": dict(ctx.request_properties or {}),
        "model": call.resource,
        "url": call.url,
        "streamed": call.streamed,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "latency_ms": round(call.latency_ms, 1),
        "headers": headers,
    }


def calls_of_this_page() -> list[dict[str, Any]]:
    """The calls made so far in the current use case instance (a tracked view's), described."""
    return [describe(call) for call in recent_calls.of(get_context().use_case_id)]


def as_text(calls: list[dict[str, Any]]) -> str:
    """The same, for a terminal (curl)."""
    lines = []
    for n, call in enumerate(calls, 1):
        lines.append(f"-- Pay-i context of GenAI call {n} of this page --")
        for key in ("use_case_name", "use_case_id", "use_case_step", "user_id", "account_name"):
            lines.append(f"{key}: {call[key]}")
        lines.append(f"limit_ids: {', '.join(call['limit_ids'])}")
        lines.append(f"request_properties: {call['request_properties']}")
        lines.append(f"tokens: {call['input_tokens']} in, {call['output_tokens']} out ({call['model']})")
        lines.append(
            "Pay-i headers that went out:" if call["headers"] else "Pay-i headers: none (not bound for Pay-i)"
        )
        lines.extend(f"  {name}: {value}" for name, value in call["headers"].items())
    return "\n".join(lines) + "\n"
