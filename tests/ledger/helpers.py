"""Call records built directly, real instrumented calls, and a look into the ledger file, for the
ledger tests."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import openai

import payi_web
from payi_web.core.context import TrackingContext
from payi_web.core.records import CallRecord, Units
from tests.instrumented import OPENAI_HTTP

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_call(
    *,
    context: Mapping[str, Any] | None = None,
    units: Mapping[str, Units] | None = None,
    timestamp: datetime = T0,
    model: str | None = "gpt-4o-mini",
    latency_ms: float = 100.0,
    failed: bool = False,
    response_id: str | None = "chatcmpl-1",
    **fields: Any,
) -> CallRecord:
    values: dict[str, Any] = {
        "timestamp": timestamp,
        "category": "system.openai",
        "resource": model,
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "status": 500 if failed else 200,
        "latency_ms": latency_ms,
        "time_to_first_token_ms": None,
        "response_id": response_id,
        "failed": failed,
        "streamed": False,
        "proxied": False,
        "context": TrackingContext(**(context or {})),
        "units": {"text": Units(10, 5)} if units is None else units,
        "headers": {},
    }
    values.update(fields)
    return CallRecord(**values)


def rows(path: Path | str, where: str = "") -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(f"SELECT * FROM calls {where} ORDER BY id")]
    finally:
        conn.close()


def count(path: Path | str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


def chat_client(usage: Callable[[str], dict[str, Any]] | None = None) -> openai.OpenAI:
    """A real openai client, instrumented, whose in-process provider answers each chat completion
    with the id `chatcmpl-<prompt>`, so that a row can be traced to its call, and `usage(prompt)`
    as its usage (by default 10 prompt and 5 completion tokens)."""

    def provider(request: Any) -> Any:
        assert request.url.host == "api.openai.test"  # never the network
        prompt = json.loads(request.read())["messages"][0]["content"]
        return OPENAI_HTTP.Response(
            200,
            json={
                "id": f"chatcmpl-{prompt}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
                "usage": usage(prompt)
                if usage
                else {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )

    client = payi_web.instrument(
        openai.OpenAI(
            api_key="sk-test",
            base_url="https://api.openai.test/v1",
            http_client=OPENAI_HTTP.Client(transport=OPENAI_HTTP.MockTransport(provider)),
            max_retries=0,
        )
    )
    assert client is not None
    return client


def ask(client: openai.OpenAI, prompt: str) -> None:
    """One chat completion whose row has the response id `chatcmpl-<prompt>`."""
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `condition()` became true within `timeout` seconds (for work another thread does)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
