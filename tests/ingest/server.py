"""A Pay-i-compatible ingest server on 127.0.0.1 for the tests: it keeps every request it receives.

It answers `POST /api/v1/ingest` like Pay-i (200 and an `IngestResponse`), or as a test scripts
it: errors for the next N requests, a delay, a fixed status; `stop()` makes it unreachable
(the port closed, open connections cut) and `start()` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    raw_headers: list[tuple[str, str]]  # as sent
    body: bytes
    status: int  # what the server answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def payi_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith("xproxy-")}


OK_BODY = {
    "event_timestamp": "2025-01-01T00:00:00Z",
    "ingest_timestamp": "2025-01-01T00:00:00Z",
    "request_id": "req-1",
    "xproxy_result": {"request_id": "req-1"},
}


@dataclass
class IngestServer:
    delay: float = 0.0  # before every answer
    status: int = 200  # the answer once scripted failures are used up
    error_body: dict[str, Any] = field(
        default_factory=lambda: {"xproxy_error": {"code": "error", "message": "scripted failure"}}
    )
    # (request) -> status or None: decides per request, before `failures` and `status`.
    decide: Callable[[Received], int | None] | None = None
    received: list[Received] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _answering: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _connections: set[socket.socket] = field(default_factory=set)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def accepted_ids(self) -> list[str]:
        return [r.json["provider_response_id"] for r in self.accepted]

    def wait_for(self, predicate: Callable[[IngestServer], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.01)
        return predicate(self)

    def _answer(self, request: Received) -> int:
        with self._lock:
            status = self.decide(request) if self.decide is not None else None
            if status is None and self._failures:
                status = self._failures.pop(0)
            return self.status if status is None else status

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body are written apart: they must not wait for Nagle's algorithm.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # cut by stop(): never received
                    self.close_connection = True
                    return
                if server.delay:
                    time.sleep(server.delay)
                with server._answering:  # stop() cuts connections between answers, never inside one
                    if self.server is not server._server:  # stopped meanwhile
                        self.close_connection = True
                        return
                    self._answer(body)

            def _answer(self, body: bytes) -> None:
                request = Received(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    list(self.headers.items()),
                    body,
                    0,
                )
                status = server._answer(request)
                with server._lock:
                    server.received.append(
                        Received(
                            request.method,
                            request.path,
                            request.headers,
                            request.raw_headers,
                            body,
                            status,
                        )
                    )
                payload = json.dumps(OK_BODY if status < 300 else server.error_body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the listen backlog: many senders connect at once

        httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = httpd.server_address[1]
        self._server = httpd
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True, name="ingest-server").start()
        return self.url

    def stop(self) -> None:
        """Unreachable from now on: the listening port closed and every open connection cut."""
        with self._answering:
            httpd, self._server = self._server, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
