"""Anthropic's Messages API, as the offline model answers it, plain and streamed."""

from __future__ import annotations

from typing import Any

from ._text import LABEL, Reply, answer, json_reply, prompt_of, reply_id, stream_reply, tokens

__all__ = ["messages"]


def messages(body: dict[str, Any]) -> Reply:
    prompt = prompt_of(body)
    words = answer(prompt)
    text = f"[{LABEL}] " + " ".join(words)
    ident = reply_id("msg_", prompt)
    model = body.get("model", "fake-claude")
    usage = {
        "input_tokens": tokens(prompt),
        "output_tokens": len(words),
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    message = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if body.get("stream") is not True:
        return json_reply(message)
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for word in text.split():
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word + " "},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return stream_reply(events)
