"""A small keep-alive HTTP/1.1 client on asyncio streams: one connection per simulated user.

The load generator shares 2 cores with the server under test and the provider: a full HTTP
client (httpx) would cost several times the CPU of this one per request. It speaks just what
the harness needs: GET/POST with a small body, responses with a content-length or chunked
body, cookies kept from `Set-Cookie`. A connection that the server closed while idle is opened
again before the request is sent; nothing is ever retried after it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field


class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Connection:
    """One client (one user): one keep-alive connection to one server, and its cookies."""

    host: str
    port: int
    timeout: float = 30.0
    cookies: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), self.timeout
        )
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        return await asyncio.wait_for(self._request(method, path, headers or {}, body), self.timeout)

    async def _request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if self._reader is not None and (self._reader.at_eof() or self._reader.exception() is not None):
            await self.close()  # the server closed it while it was idle
        if self._writer is None:
            await self._connect()
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self.cookies:
            lines.append("cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body or method == "POST":
            lines.append(f"content-length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            response = await self._read(reader)
        except BaseException:
            await self.close()
            raise
        if (response.header("connection") or "").lower() == "close":
            await self.close()
        return response

    async def _read(self, reader: asyncio.StreamReader) -> Response:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HTTPError(f"connection closed before a response ({len(exc.partial)} bytes)") from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: list[tuple[str, str]] = []
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers.append((name, value))
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()
        if chunked:
            parts = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                parts.append(await reader.readexactly(size + 2))
            body = b"".join(part[:-2] for part in parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:  # until the server closes the connection
            body = await reader.read()
            headers.append(("connection", "close"))
        return Response(status, headers, body)
