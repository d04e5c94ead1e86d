"""An offline, OpenAI- and Anthropic-compatible GenAI provider for tests, demos and benchmarks.

It answers chat completions, completions, embeddings, responses (OpenAI) and messages
(Anthropic), plain and streamed, with deterministic text derived from the prompt and plausible
token usage, and keeps every request it received (with its headers) so that a test can check
the attribution that arrived. Reach it through the real SDK clients, either in-process
(`transport()`) or as a real HTTP server on 127.0.0.1 (`serve()`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeProvider", "ReceivedRequest"]

from . import anthropic, openai
from ._text import LABEL, Reply

__all__ = ["LABEL", "FakeProvider", "ReceivedRequest"]

# Each endpoint the offline model answers, by the end of its path, in the order they are matched.
_ROUTES: list[tuple[str, Callable[[dict[str, Any]], Reply]]] = [
    ("/chat/completions", openai.chat),
    ("/completions", lambda body: openai.chat(body, legacy=True)),
    ("/embeddings", openai.embeddings),
    ("/responses", openai.responses),
    ("/messages", anthropic.messages),
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
class FakeProvider:
    """See the module docstring. `stream_delay` (seconds) paces streamed chunks."""

    stream_delay: float = 0.0
    fail_status: int | None = None  # answer every request with this error status
    # Refuse a request whose headers, counted as `name: value` lines, exceed this many bytes with
    # 431, as gateways do (nginx and most load balancers at 8 KB or a little more). None: no limit.
    max_header_bytes: int | None = None
    received: list[ReceivedRequest] = field(default_factory=list)  # what it accepted
    refused_header_sizes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    # --- the provider ---------------------------------------------------------------------

    def reply(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        if self.max_header_bytes is not None:
            size = sum(len(name) + len(value) + 4 for name, value in headers.items())
            if size > self.max_header_bytes:
                with self._lock:
                    self.refused_header_sizes.append(size)
                return Reply(431, {"content-type": "application/json"}, [b'{"error": "headers too large"}'])
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
            return Reply(self.fail_status, {"content-type": "application/json"}, [json.dumps(error).encode()])
        if not isinstance(body, dict):
            body = {}
        route = path.rstrip("/")
        for suffix, answer in _ROUTES:
            if route.endswith(suffix):
                reply = answer(body)
                return replace(reply, delay=self.stream_delay) if reply.streamed else reply
        return Reply(404, {"content-type": "application/json"}, [b'{"error": {"message": "not found"}}'])

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
    def _chunks(reply: Reply) -> Iterator[bytes]:
        for chunk in reply.chunks:
            if reply.delay:
                time.sleep(reply.delay)
            yield chunk

    @staticmethod
    async def _achunks(reply: Reply) -> AsyncIterator[bytes]:
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
