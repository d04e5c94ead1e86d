"""payi-web hides only the usage chunk it asked for itself: a last chunk that carries anything
else, such as the result Pay-i's proxy rides on it, reaches the caller."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import payi_web
from payi_web import track_context
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_LIBS

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
RESULT = {"request_id": "payi-req-1", "cost": {"total": {"base": 0.00002}}}


def _stream(last: dict[str, Any]) -> bytes:
    events = [
        {**HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        {**HEAD, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1}, **last},
    ]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _client(lib: Any, body: bytes) -> openai.OpenAI:
    def handle(request: Any) -> Any:
        return lib.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = lib.Client(transport=lib.MockTransport(handle))
    return openai.OpenAI(api_key="sk", base_url=payi_web.proxy_url("openai"), http_client=http, max_retries=0)


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_the_proxy_s_result_on_the_last_chunk_reaches_the_caller(lib: Any, payi_calls: CapturedCalls) -> None:
    client = payi_web.instrument(_client(lib, _stream({"xproxy_result": RESULT})))
    with track_context(user_id="alice"):
        chunks = [chunk.model_dump() for chunk in client.chat.completions.create(**CHAT, stream=True)]
    assert chunks[-1]["xproxy_result"] == RESULT  # payi-web asked for the usage, not for hiding this
    [call] = payi_calls
    assert call.units["text"] == (9, 1)


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_the_usage_chunk_payi_web_asked_for_is_hidden(lib: Any, payi_calls: CapturedCalls) -> None:
    client = payi_web.instrument(_client(lib, _stream({})))
    with track_context(user_id="alice"):
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
    assert len(chunks) == 1 and chunks[0].choices[0].delta.content == "Hi"
    [call] = payi_calls
    assert call.units["text"] == (9, 1)
