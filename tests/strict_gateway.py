"""An LLM gateway on 127.0.0.1 that refuses large request headers, as real gateways do.

It answers like `FakeProvider` (whose `received` keeps what it accepted), over real HTTP/1.1, so
that the client's own header checks (h11's) run; a request whose headers, counted as
`name: value` lines, exceed `limit` bytes gets `431 Request Header Fields Too Large` (nginx
and most load balancers refuse at 8 KB or a little more).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from payi_web.fake_provider import FakeProvider

HEADER_LIMIT = 8192


class StrictGateway:
    def __init__(self, provider: FakeProvider, limit: int = HEADER_LIMIT) -> None:
        self.provider = provider
        self.limit = limit
        self.refused: list[int] = []  # the header sizes of refused requests
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body are written apart: they must not wait for Nagle's algorithm.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                size = sum(len(name) + len(value) + 4 for name, value in self.headers.items())
                if size > gateway.limit:
                    with gateway._lock:
                        gateway.refused.append(size)
                    self._send(431, {"content-type": "application/json"}, b'{"error": "headers too large"}')
                    return
                reply = gateway.provider.reply("POST", self.path, dict(self.headers.items()), raw)
                self._send(reply.status, reply.headers, b"".join(reply.chunks))

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="strict-gateway"
        ).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def sent_properties(value: str) -> dict[str, Any]:
    """A property header as sent in proxy mode (base64 of JSON), decoded."""
    data: dict[str, Any] = json.loads(base64.b64decode(value))
    return data
