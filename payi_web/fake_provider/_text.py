"""What the offline model says: deterministic words from the prompt, plausible token counts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

LABEL = "offline demo model"
_WORDS = [
    "the",
    "model",
    "answers",
    "offline",
    "with",
    "words",
    "drawn",
    "from",
    "your",
    "prompt",
    "and",
    "nothing",
    "leaves",
    "this",
    "machine",
]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    streamed: bool = False  # paced by the provider's stream delay
    delay: float = 0.0  # between chunks of a stream


def json_reply(payload: dict[str, Any]) -> Reply:
    return Reply(200, {"content-type": "application/json"}, [json.dumps(payload).encode()])


def stream_reply(events: list[tuple[str | None, Any]]) -> Reply:
    return Reply(200, {"content-type": "text/event-stream"}, sse(events), streamed=True)


def reply_id(prefix: str, prompt: str) -> str:
    return prefix + hashlib.sha256(prompt.encode()).hexdigest()[:12]


def tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 4 / 3))


def answer(prompt: str, words: int = 12) -> list[str]:
    """Deterministic words derived from the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    source = prompt.split() or _WORDS
    return [source[(digest[i % len(digest)] + i) % len(source)] for i in range(words)]


def prompt_of(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("messages", "input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                content = item.get("content") if isinstance(item, dict) else item
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    parts.extend(c.get("text", "") for c in content if isinstance(c, dict))
    return " ".join(parts)


def sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append(f"{head}data: {payload}\n\n".encode())
    return out
