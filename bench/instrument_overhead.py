"""Added cost per GenAI call of an instrumented client, against the same client uninstrumented.

A real `openai.OpenAI` client calls an in-process transport (no network, no server), so the
figure is the client's own cost plus ours: the worst case for our share. Measured in one run,
in interleaved rounds; the ratio is the median of the rounds' paired ratios. Target: <= 8% added on a
non-streaming call.

    .venv/bin/python bench/instrument_overhead.py
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai

import payi_web
from payi_web.core.records import CallRecord

# Of a chat completion, instrumented against uninstrumented. 1.08 since the bodies are read as
# JSON and the SDK parses its response itself (no shared parse: no public mechanism allows it).
TARGET = 1.08
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
).encode()
SSE = (
    b"".join(
        b"data: "
        + json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": w}}],
            }
        ).encode()
        + b"\n\n"
        for w in ("a", "b", "c", "d")
    )
    + b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\ndata: [DONE]\n\n'
)


def handler(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content:
        return httpx2.Response(200, content=iter([SSE]), headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=REPLY, headers={"content-type": "application/json"})


class NullSink:
    def record(self, call: CallRecord) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True


def client() -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(
        api_key="sk-bench", base_url=payi_web.proxy_url("openai"), http_client=http, max_retries=0
    )


def best_of(fn: Callable[[], object], number: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args()

    payi_web.configure(ledger=False, defaults={"limit_ids": ["cap"]})
    sink = NullSink()
    payi_web.add_sink(sink)
    plain, tracked = client(), payi_web.instrument(client())
    scope = payi_web.track_context(user_id="42", account_name="acme", use_case_name="bench")
    scope.__enter__()

    cases: dict[str, Callable[[], object]] = {
        "chat, uninstrumented": lambda: plain.chat.completions.create(**CHAT),
        "chat, instrumented": lambda: tracked.chat.completions.create(**CHAT),
        "stream, uninstrumented": lambda: list(plain.chat.completions.create(**CHAT, stream=True)),
        "stream, instrumented": lambda: list(tracked.chat.completions.create(**CHAT, stream=True)),
    }
    for fn in cases.values():  # warm up: pydantic models, imports
        for _ in range(50):
            fn()
    results: dict[str, list[float]] = {name: [] for name in cases}
    gc.disable()
    try:
        for round_ in range(args.repeat):
            # Interleaved, so drift hits every case alike; in alternating order (ABBA), so drift
            # within a round does not always favour the case that runs first.
            order = list(cases.items()) if round_ % 2 == 0 else list(reversed(cases.items()))
            for name, fn in order:
                results[name] += best_of(fn, args.number, 1)
    finally:
        gc.enable()
        scope.__exit__(None, None, None)
        payi_web.remove_sink(sink)
        payi_web.uninstrument(tracked)

    best = {name: min(times) for name, times in results.items()}
    print("payi_web: added cost per GenAI call through an instrumented openai client")
    print(f"  Python {platform.python_version()}, openai {openai.__version__}, httpx2 {httpx2.__version__}")
    setup = f"{args.repeat} interleaved rounds x {args.number} calls"
    print(f"  in-process transport; {setup}; a 4-field context; a no-op sink")
    print("  ratio: the median over rounds of instrumented / uninstrumented in the same round")
    print("  (paired, so that drift on a shared machine cancels); µs/call: the best round\n")
    print(f"  {'case':<26}{'µs/call':>10}{'ratio':>9}{'added µs':>10}  target")
    for kind in ("chat", "stream"):
        base_times, our_times = results[f"{kind}, uninstrumented"], results[f"{kind}, instrumented"]
        ratio = statistics.median(ours / base for ours, base in zip(our_times, base_times, strict=True))
        base, ours = best[f"{kind}, uninstrumented"], best[f"{kind}, instrumented"]
        verdict = ("PASS" if ratio <= TARGET else "MISS") if kind == "chat" else "info"
        print(f"  {kind + ', uninstrumented':<26}{base:>10.1f}{1:>9.3f}")
        added = ours - base
        print(
            f"  {kind + ', instrumented':<26}{ours:>10.1f}{ratio:>9.3f}{added:>10.1f}  <={TARGET} {verdict}"
        )


if __name__ == "__main__":
    main()
