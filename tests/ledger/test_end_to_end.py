"""A real openai client, instrumented, inside a tracking scope: its call lands in the ledger."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import openai
import pytest

import payi_web
from payi_web.ledger import installed_sink, run_report
from tests.instrumented import OPENAI_HTTP

from .helpers import rows

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-e2e",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Short."}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 42,
        "completion_tokens": 7,
        "total_tokens": 49,
        "prompt_tokens_details": {"cached_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}


def test_an_instrumented_openai_call_is_in_the_ledger(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    payi_web.configure(ledger=db, defaults={"account_name": "acme"})

    def provider(request: Any) -> Any:
        assert request.url.host == "api.openai.test"  # never the network
        return OPENAI_HTTP.Response(200, json=COMPLETION)

    client = payi_web.instrument(
        openai.OpenAI(
            api_key="sk-test",
            base_url="https://api.openai.test/v1",
            http_client=OPENAI_HTTP.Client(transport=OPENAI_HTTP.MockTransport(provider)),
            max_retries=0,
        )
    )
    with payi_web.track_context(user_id="alice", use_case_name="summary"):
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise this."}]
        )
    assert answer.choices[0].message.content == "Short."
    assert payi_web.flush(5)

    (row,) = rows(db)
    assert (row["user_id"], row["account_name"], row["use_case_name"]) == ("alice", "acme", "summary")
    assert row["use_case_id"]  # the scope's instance id
    assert (row["model"], row["category"], row["status"], row["failed"]) == (
        "gpt-4o-mini",
        "system.openai",
        200,
        0,
    )
    assert (row["input_tokens"], row["output_tokens"]) == (42, 7)
    assert (row["text_input_tokens"], row["cache_read_tokens"], row["text_output_tokens"]) == (32, 10, 7)
    assert row["response_id"] == "chatcmpl-e2e"
    assert row["url"] == "https://api.openai.test/v1/chat/completions"
    sink = installed_sink()
    assert sink is not None and sink.stats.written == 1

    out = io.StringIO()
    run_report({"format": "json", "by": "user_id,use_case_name"}, out)  # finds the configured ledger
    (group,) = json.loads(out.getvalue())["groups"]
    assert group | {"p50_latency_ms": None, "p95_latency_ms": None} == {
        "user_id": "alice",
        "use_case_name": "summary",
        "calls": 1,
        "errors": 0,
        "input_tokens": 42,
        "output_tokens": 7,
        "unknown_usage": 0,
        "p50_latency_ms": None,
        "p95_latency_ms": None,
        "estimated_cost_usd": None,
        "priced_calls": 0,
    }
