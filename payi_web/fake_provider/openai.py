"""OpenAI's endpoints, as the offline model answers them: chat completions, completions,
embeddings and the Responses API, plain and streamed."""

from __future__ import annotations

from typing import Any

from ._text import LABEL, Reply, answer, json_reply, prompt_of, reply_id, stream_reply, tokens

__all__ = ["chat", "embeddings", "responses"]


def chat(body: dict[str, Any], legacy: bool = False) -> Reply:
    """Chat completions (or, `legacy`, completions): a whole answer, or its stream of chunks."""
    prompt = prompt_of(body)
    words = answer(prompt)
    usage = {
        "prompt_tokens": tokens(prompt),
        "completion_tokens": len(words),
        "total_tokens": tokens(prompt) + len(words),
    }
    kind = "text_completion" if legacy else "chat.completion"
    head = {"id": reply_id("chatcmpl-", prompt), "created": 0, "model": body.get("model", "fake-model")}
    if body.get("stream") is not True:
        text = f"[{LABEL}] " + " ".join(words)
        choice: dict[str, Any] = (
            {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
            if legacy
            else {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        )
        return json_reply({**head, "object": kind, "choices": [choice], "usage": usage})
    chunk = {**head, "object": kind + ".chunk"}
    events: list[tuple[str | None, Any]] = []
    for i, piece in enumerate([f"[{LABEL}]", *(f" {w}" for w in words)]):
        if legacy:
            choice = {"index": 0, "text": piece, "finish_reason": None}
        else:
            delta = {"content": piece, **({"role": "assistant"} if i == 0 else {})}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
        events.append((None, {**chunk, "choices": [choice]}))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return stream_reply(events)


def embeddings(body: dict[str, Any]) -> Reply:
    return json_reply(
        {
            "object": "list",
            "model": body.get("model", "fake-embedding"),
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "usage": {"prompt_tokens": tokens(prompt_of(body)), "total_tokens": tokens(prompt_of(body))},
        }
    )


def responses(body: dict[str, Any]) -> Reply:
    prompt = prompt_of(body)
    words = answer(prompt)
    text = f"[{LABEL}] " + " ".join(words)
    response = {
        "id": reply_id("resp_", prompt),
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": body.get("model", "fake-model"),
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": tokens(prompt),
            "output_tokens": len(words),
            "total_tokens": tokens(prompt) + len(words),
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
    if body.get("stream") is not True:
        return json_reply(response)
    created = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": created})
    ]
    for i, word in enumerate(text.split()):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": i + 1,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word + " ",
                    "logprobs": [],
                },
            )
        )
    events.append(
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": len(events), "response": response},
        )
    )
    return stream_reply(events)
