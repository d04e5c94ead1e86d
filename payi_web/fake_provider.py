"""An offline, OpenAI- and Anthropic-compatible GenAI provider for tests, demos and benchmarks.

It answers chat completions, completions, embeddings, responses (OpenAI) and messages
(Anthropic), plain and streamed, with deterministic text derived from the prompt and plausible
token usage, and keeps every request it received (with its headers) so that a test can check
the attribution that arrived. Reach it through the real SDK clients, either in-process
(`transport()`) or as a real HTTP server on 127.0.0.1 (`serve()`).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeProvider", "ReceivedRequest"]

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


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON body, or None

    def payi_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith("xproxy-")}


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    delay: float = 0.0  # between chunks of a stream


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 4 / 3))


def _answer(prompt: str, words: int = 12) -> list[str]:
    """Deterministic words derived from the prompt."""
    digest = hashlib.sha256(prompt.encode()).digest()
    source = prompt.split() or _WORDS
    return [source[(digest[i % len(digest)] + i) % len(source)] for i in range(words)]


def _prompt(body: dict[str, Any]) -> str:
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


def _sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append(f"{head}data: {payload}\n\n".encode())
    return out


@dataclass
class FakeProvider:
    """See the module docstring. `stream_delay` (seconds) paces streamed chunks."""

    stream_delay: float = 0.0
    fail_status: int | None = None  # answer every request with this error status
    received: list[ReceivedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    # --- the provider ---------------------------------------------------------------------

    def reply(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.received.append(
                ReceivedRequest(method, path, {k.lower(): v for k, v in headers.items()}, body)
            )
        if self.fail_status is not None:
            error = {"error": {"message": "fake provider failure", "type": "server_error"}}
            return _Reply(
                self.fail_status, {"content-type": "application/json"}, [json.dumps(error).encode()]
            )
        if not isinstance(body, dict):
            body = {}
        route = path.rstrip("/")
        if route.endswith("/chat/completions"):
            return self._chat(body)
        if route.endswith("/completions"):
            return self._chat(body, legacy=True)
        if route.endswith("/embeddings"):
            return self._json(
                {
                    "object": "list",
                    "model": body.get("model", "fake-embedding"),
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                    "usage": {
                        "prompt_tokens": _tokens(_prompt(body)),
                        "total_tokens": _tokens(_prompt(body)),
                    },
                }
            )
        if route.endswith("/responses"):
            return self._responses(body)
        if route.endswith("/messages"):
            return self._messages(body)
        return _Reply(404, {"content-type": "application/json"}, [b'{"error": {"message": "not found"}}'])

    def _json(self, payload: dict[str, Any]) -> _Reply:
        return _Reply(200, {"content-type": "application/json"}, [json.dumps(payload).encode()])

    def _stream(self, chunks: list[bytes]) -> _Reply:
        return _Reply(200, {"content-type": "text/event-stream"}, chunks, self.stream_delay)

    def _chat(self, body: dict[str, Any], legacy: bool = False) -> _Reply:
        prompt = _prompt(body)
        words = _answer(prompt)
        model = body.get("model", "fake-model")
        usage = {
            "prompt_tokens": _tokens(prompt),
            "completion_tokens": len(words),
            "total_tokens": _tokens(prompt) + len(words),
        }
        ident = "chatcmpl-" + hashlib.sha256(prompt.encode()).hexdigest()[:12]
        kind = "text_completion" if legacy else "chat.completion"
        if body.get("stream") is not True:
            text = f"[{LABEL}] " + " ".join(words)
            choice: dict[str, Any] = (
                {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                if legacy
                else {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            )
            return self._json(
                {
                    "id": ident,
                    "object": kind,
                    "created": 0,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        pieces = [f"[{LABEL}]", *(f" {w}" for w in words)]
        events: list[tuple[str | None, Any]] = []
        for i, piece in enumerate(pieces):
            delta: dict[str, Any] = {"text": piece} if legacy else {"content": piece}
            if i == 0 and not legacy:
                delta["role"] = "assistant"
            events.append(
                (
                    None,
                    {
                        "id": ident,
                        "object": kind + ".chunk",
                        "created": 0,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                **({"text": piece} if legacy else {"delta": delta}),
                                "finish_reason": None,
                            }
                        ],
                    },
                )
            )
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(
                (
                    None,
                    {
                        "id": ident,
                        "object": kind + ".chunk",
                        "created": 0,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    },
                )
            )
        events.append((None, "[DONE]"))
        return self._stream(_sse(events))

    def _responses(self, body: dict[str, Any]) -> _Reply:
        prompt = _prompt(body)
        words = _answer(prompt)
        text = f"[{LABEL}] " + " ".join(words)
        response = {
            "id": "resp_" + hashlib.sha256(prompt.encode()).hexdigest()[:12],
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
                "input_tokens": _tokens(prompt),
                "output_tokens": len(words),
                "total_tokens": _tokens(prompt) + len(words),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if body.get("stream") is not True:
            return self._json(response)
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
        return self._stream(_sse(events))

    def _messages(self, body: dict[str, Any]) -> _Reply:
        prompt = _prompt(body)
        words = _answer(prompt)
        text = f"[{LABEL}] " + " ".join(words)
        ident = "msg_" + hashlib.sha256(prompt.encode()).hexdigest()[:12]
        model = body.get("model", "fake-claude")
        usage = {
            "input_tokens": _tokens(prompt),
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
            return self._json(message)
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
        return self._stream(_sse(events))

    # --- in-process ------------------------------------------------------------------------

    def transport(self, lib: Any, *, asynchronous: bool = False) -> Any:
        """A `MockTransport` of `lib` (the `httpx` or `httpx2` module) serving this provider.

        Bodies are given as iterators, so streamed responses really stream (they are not read
        into memory before the client sees them)."""

        def handle(request: Any) -> Any:
            reply = self.reply(request.method, request.url.path, dict(request.headers), request.read())
            content: Iterator[bytes] | AsyncIterator[bytes]
            content = self._achunks(reply) if asynchronous else self._chunks(reply)
            return lib.Response(reply.status, headers=reply.headers, content=content)

        return lib.MockTransport(handle)

    @staticmethod
    def _chunks(reply: _Reply) -> Iterator[bytes]:
        for chunk in reply.chunks:
            if reply.delay:
                time.sleep(reply.delay)
            yield chunk

    @staticmethod
    async def _achunks(reply: _Reply) -> AsyncIterator[bytes]:
        import asyncio

        for chunk in reply.chunks:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            yield chunk

    # --- over HTTP -------------------------------------------------------------------------

    def serve(self) -> str:
        """Start serving on 127.0.0.1 (a free port) in a background thread; return the base URL."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Small streamed chunks must not wait for Nagle's algorithm.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                reply = provider.reply("POST", self.path.split("?")[0], dict(self.headers.items()), raw)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in provider._chunks(reply):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # load tests open many connections at once
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-provider").start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
