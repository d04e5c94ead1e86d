"""Anthropic's usage as Pay-i's unit kinds, as Pay-i's SDK computes them: large-context kinds from
200k input tokens, cache writes by lifetime, web searches; plain and streamed, real client."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

import payi_web
from payi_web import track_context
from payi_web.testing import CapturedCalls
from tests.instrumented import ANTHROPIC_HTTP

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4"}
ASK: dict[str, Any] = {
    "model": "claude-sonnet-4",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}

CASES = [
    ({"input_tokens": 12, "output_tokens": 3}, {"text": (12, 3)}),
    (
        {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 7},
        {"text_large_context": (150_000, 7), "text_cache_read_large_context": (60_000, 0)},
    ),
    (
        {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        },
        {"text": (10, 2), "text_cache_write": (100, 0), "text_cache_write_1h": (200, 0)},
    ),
    (
        {"input_tokens": 10, "output_tokens": 2, "cache_creation_input_tokens": 40},
        {"text": (10, 2), "text_cache_write": (40, 0)},
    ),
    (
        {"input_tokens": 10, "output_tokens": 2, "server_tool_use": {"web_search_requests": 3}},
        {"text": (10, 2), "web_search_request": (0, 3)},
    ),
]


def _client(body: bytes, content_type: str, asynchronous: bool = False) -> Any:
    def handle(request: Any) -> Any:
        return ANTHROPIC_HTTP.Response(200, headers={"content-type": content_type}, content=body)

    transport = ANTHROPIC_HTTP.MockTransport(handle)
    if asynchronous:
        http = ANTHROPIC_HTTP.AsyncClient(transport=transport)
        return anthropic.AsyncAnthropic(
            api_key="sk", base_url="http://llm.test", http_client=http, max_retries=0
        )
    http = ANTHROPIC_HTTP.Client(transport=transport)
    return anthropic.Anthropic(api_key="sk", base_url="http://llm.test", http_client=http, max_retries=0)


def _kinds(units: Any) -> dict[str, tuple[int | None, int | None]]:
    return {kind: tuple(unit) for kind, unit in units.items()}


@pytest.mark.parametrize(("usage", "units"), CASES)
def test_a_message_s_usage_in_pay_i_s_unit_kinds(
    usage: dict[str, Any], units: dict[str, Any], payi_calls: CapturedCalls
) -> None:
    body = json.dumps({**MESSAGE, "content": [{"type": "text", "text": "ok"}], "usage": usage}).encode()
    client = payi_web.instrument(_client(body, "application/json"))
    with track_context(user_id="alice"):
        client.messages.create(**ASK)
    [call] = payi_calls
    assert _kinds(call.units) == units and call.context.user_id == "alice"


@pytest.mark.parametrize(("usage", "units"), CASES)
async def test_a_streamed_message_s_usage_in_pay_i_s_unit_kinds(
    usage: dict[str, Any], units: dict[str, Any], payi_calls: CapturedCalls
) -> None:
    # The input side arrives with message_start, the output side (and tool use) with message_delta.
    start_usage = {k: v for k, v in usage.items() if k not in ("output_tokens", "server_tool_use")}
    delta_usage = {k: v for k, v in usage.items() if k in ("output_tokens", "server_tool_use")}
    events = [
        (
            "message_start",
            {"type": "message_start", "message": {**MESSAGE, "content": [], "usage": start_usage}},
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
    client = payi_web.instrument(_client(body, "text/event-stream", asynchronous=True))
    stream = await client.messages.create(**ASK, stream=True)
    async for _ in stream:
        pass
    [call] = payi_calls
    assert call.streamed and _kinds(call.units) == units
