"""A record's `failed` is what the caller saw: a 200 whose body the SDK cannot use, or a stream
that carries an error event, is a failed call whatever its HTTP status says."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

import payi_web
from payi_web import track_context
from payi_web.testing import CapturedCalls
from tests.instrumented import ANTHROPIC_HTTP, CHAT, OPENAI_LIBS

TRUNCATED = ("application/json", b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [')
HTML_AS_JSON = ("application/json", b"<html><body>502 Bad Gateway</body></html>")
HTML = ("text/html", b"<html><body>Sign in to the gateway</body></html>")
EMPTY = ("application/json", b"")


def _sse(*events: str) -> bytes:
    return "".join(f"{event}\n\n" for event in events).encode()


CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
OPENAI_STREAM_ERROR = _sse(
    "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
    "data: " + json.dumps({"error": {"message": "The server is overloaded", "type": "server_error"}}),
)
ANTHROPIC_STREAM_ERROR = _sse(
    "event: message_start\ndata: "
    + json.dumps(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4",
                "content": [],
                "usage": {"input_tokens": 9, "output_tokens": 1},
            },
        }
    ),
    "event: error\ndata: "
    + json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}),
)


def _answering(lib: Any, content_type: str, body: bytes, asynchronous: bool = False) -> Any:
    def handle(request: Any) -> Any:
        return lib.Response(200, headers={"content-type": content_type}, content=body)

    transport = lib.MockTransport(handle)
    return lib.AsyncClient(transport=transport) if asynchronous else lib.Client(transport=transport)


@pytest.mark.parametrize(
    "answer", [TRUNCATED, HTML_AS_JSON, EMPTY, HTML], ids=["truncated", "html-as-json", "empty", "html"]
)
@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_200_whose_body_is_not_a_completion_is_a_failed_call(
    lib: Any, answer: tuple[str, bytes], payi_calls: CapturedCalls
) -> None:
    http = _answering(lib, *answer)
    client = payi_web.instrument(
        openai.OpenAI(api_key="sk", base_url="http://llm.test/v1", http_client=http, max_retries=0)
    )
    with track_context(user_id="alice"):
        try:
            reply: Any = client.chat.completions.create(**CHAT)
        except Exception:
            raised = True
        else:
            raised = False
            assert isinstance(reply, str)  # the SDK hands a non-JSON body over as text
    [call] = payi_calls
    assert call.status == 200 and call.failed and call.context.user_id == "alice"
    assert raised is (answer[0] == "application/json")


def test_an_anthropic_200_with_a_truncated_body_is_a_failed_call(payi_calls: CapturedCalls) -> None:
    http = _answering(ANTHROPIC_HTTP, *TRUNCATED)
    client = payi_web.instrument(
        anthropic.Anthropic(api_key="sk", base_url="http://llm.test", http_client=http, max_retries=0)
    )
    with pytest.raises(ValueError):
        client.messages.create(
            model="claude-sonnet-4", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    [call] = payi_calls
    assert call.failed and call.category == "system.anthropic"


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_an_error_event_in_an_openai_stream_is_a_failed_call(lib: Any, payi_calls: CapturedCalls) -> None:
    http = _answering(lib, "text/event-stream", OPENAI_STREAM_ERROR)
    client = payi_web.instrument(
        openai.OpenAI(api_key="sk", base_url="http://llm.test/v1", http_client=http, max_retries=0)
    )
    with pytest.raises(openai.APIError, match="overloaded"):
        for _ in client.chat.completions.create(**CHAT, stream=True):
            pass
    [call] = payi_calls
    assert call.status == 200 and call.streamed and call.failed


async def test_an_error_event_in_an_async_anthropic_stream_is_a_failed_call(
    payi_calls: CapturedCalls,
) -> None:
    http = _answering(ANTHROPIC_HTTP, "text/event-stream", ANTHROPIC_STREAM_ERROR, asynchronous=True)
    client = payi_web.instrument(
        anthropic.AsyncAnthropic(api_key="sk", base_url="http://llm.test", http_client=http, max_retries=0)
    )
    stream = await client.messages.create(
        model="claude-sonnet-4", max_tokens=10, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(anthropic.APIStatusError):
        async for _ in stream:
            pass
    [call] = payi_calls
    assert call.streamed and call.failed and call.response_id == "msg_1"


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_stream_that_ends_well_is_not_failed(lib: Any, payi_calls: CapturedCalls) -> None:
    body = _sse(
        "data: " + json.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"content": 'an "error" word'}}]}),
        "data: [DONE]",
    )
    http = _answering(lib, "text/event-stream", body)
    client = payi_web.instrument(
        openai.OpenAI(api_key="sk", base_url="http://llm.test/v1", http_client=http, max_retries=0)
    )
    assert [c.choices[0].delta.content for c in client.chat.completions.create(**CHAT, stream=True)] == [
        'an "error" word'
    ]
    [call] = payi_calls
    assert not call.failed


@pytest.mark.parametrize(
    ("usage", "units"),
    [
        ({"prompt_tokens": -5, "completion_tokens": 3}, {"text": (None, 3)}),
        ({"prompt_tokens": 7, "completion_tokens": 2.5}, {"text": (7, None)}),
        ({"prompt_tokens": "NaN", "completion_tokens": None}, {"text": (None, None)}),
        (
            {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": -1}},
            {"text": (None, 4), "text_cache_read": (None, 0)},
        ),
    ],
)
def test_token_counts_that_are_not_counts_are_unknown_never_zero(
    usage: dict[str, Any], units: dict[str, tuple[int | None, int | None]], payi_calls: CapturedCalls
) -> None:
    body = {**CHUNK, "object": "chat.completion", "choices": [], "usage": usage}
    http = _answering(OPENAI_LIBS[0], "application/json", json.dumps(body).encode())
    client = payi_web.instrument(
        openai.OpenAI(api_key="sk", base_url="http://llm.test/v1", http_client=http, max_retries=0)
    )
    client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert {kind: tuple(unit) for kind, unit in call.units.items()} == units
    assert not call.failed
