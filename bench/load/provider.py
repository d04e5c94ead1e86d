"""A fast OpenAI-compatible fake provider for the load harness: one asyncio process on 127.0.0.1.

`payi_web.fake_provider.FakeProvider` (a `ThreadingHTTPServer`: a thread per connection, and a
SHA-256 answer derived from each prompt) costs the CPU that the servers under test need on a
2-core machine. This one answers chat completions, plain and streamed (with the usage chunk
when `stream_options.include_usage` asks for it), with a fixed answer, on keep-alive HTTP/1.1
connections, and records for every call:

    [request id, call kind, user id, account name, use case name, request properties, any xProxy header]

the first two parsed from the prompt (see `plans.py`), the rest from the Pay-i headers
(request properties decoded from base64 JSON when drained). `GET /_records` returns the records
so far and forgets them (the harness drains them after each phase, so memory stays bounded);
`GET /_stats` returns counters.

    python -m bench.load.provider --fd N      # serve on an inherited listening socket
    python -m bench.load.provider --port 0    # or bind 127.0.0.1 itself and print the URL
    python -m bench.load.provider ... --delay 0.5   # answer each GenAI call after 0.5 s
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import socket
import sys
from typing import Any

from bench.load.plans import ANSWER, MODEL, parse_prompt

_WORDS = ANSWER.split(" ")
_USAGE = {"prompt_tokens": 6, "completion_tokens": len(_WORDS), "total_tokens": 6 + len(_WORDS)}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(status: str, content_type: bytes, extra: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\n".encode() + b"content-type: " + content_type + b"\r\n" + extra + b"\r\n"


def _plain_body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-load",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
            ],
            "usage": _USAGE,
        },
        separators=(",", ":"),
    ).encode()


def _stream_events(with_usage: bool) -> bytes:
    events = []
    for i, word in enumerate(_WORDS):
        delta: dict[str, Any] = {"content": word if i == 0 else " " + word}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-load",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(chunk)
    events[-1]["choices"][0]["finish_reason"] = "stop"
    if with_usage:
        events.append(
            {
                "id": "chatcmpl-load",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": MODEL,
                "choices": [],
                "usage": _USAGE,
            }
        )
    out = b"".join(
        _chunk(b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n") for e in events
    )
    return out + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


_PLAIN = _plain_body()
PLAIN_REPLY = _head("200 OK", b"application/json", b"content-length: %d\r\n" % len(_PLAIN)) + _PLAIN
_STREAM_HEAD = _head("200 OK", b"text/event-stream", b"transfer-encoding: chunked\r\n")
STREAM_REPLY = _STREAM_HEAD + _stream_events(False)
STREAM_REPLY_USAGE = _STREAM_HEAD + _stream_events(True)
_NOT_FOUND = b'{"error":{"message":"not found"}}'
NOT_FOUND = (
    _head("404 Not Found", b"application/json", b"content-length: %d\r\n" % len(_NOT_FOUND)) + _NOT_FOUND
)
_BAD = b'{"error":{"message":"bad request"}}'
BAD_REQUEST = (
    _head("400 Bad Request", b"application/json", b"content-length: %d\r\nconnection: close\r\n" % len(_BAD))
    + _BAD
)


def _properties(value: str | None) -> Any:
    """A request-properties header: base64 JSON (proxy style) or JSON; the raw text if neither."""
    if value is None:
        return None
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        pass
    try:
        return json.loads(value)
    except ValueError:
        return value


class Recorder:
    def __init__(self) -> None:
        self.records: list[list[Any]] = []
        self.calls = 0
        self.unparsed = 0

    def chat(self, headers: dict[str, str], body: bytes) -> bytes:
        self.calls += 1
        try:
            payload = json.loads(body)
            text = payload["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            self.unparsed += 1
            return BAD_REQUEST
        parsed = parse_prompt(text) if isinstance(text, str) else None
        rid, kind = parsed if parsed is not None else (None, None)
        # The properties header is decoded when the records are drained, between phases: the
        # provider's work per call in the timed phases is then the same with payi-web on or off.
        self.records.append(
            [
                rid,
                kind,
                headers.get("xproxy-user-id"),
                headers.get("xproxy-account-name"),
                headers.get("xproxy-usecase-name"),
                headers.get("xproxy-request-properties"),
                any(name.startswith("xproxy-") for name in headers),
            ]
        )
        if payload.get("stream") is True:
            options = payload.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            return STREAM_REPLY_USAGE if usage else STREAM_REPLY
        return PLAIN_REPLY

    def drain(self) -> bytes:
        records, self.records = self.records, []
        for record in records:
            record[5] = _properties(record[5])
        return json.dumps(records, separators=(",", ":")).encode()

    def stats(self) -> bytes:
        return json.dumps(
            {"calls": self.calls, "unparsed": self.unparsed, "held": len(self.records)}
        ).encode()


def _json_reply(body: bytes) -> bytes:
    return _head("200 OK", b"application/json", b"content-length: %d\r\n" % len(body)) + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests with a content-length body (no chunked uploads)."""

    def __init__(self, recorder: Recorder, delay: float = 0.0) -> None:
        self.recorder = recorder
        self.delay = delay
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        transport = self.transport
        assert transport is not None
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(parts) != 3 or "chunked" in headers.get("transfer-encoding", ""):
                transport.write(BAD_REQUEST)
                transport.close()
                return
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                transport.write(BAD_REQUEST)
                transport.close()
                return
            if len(buffer) < end + 4 + length:
                return
            body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            method, target = parts[0], parts[1].split("?", 1)[0]
            reply = self.reply(method, target, headers, body)
            close = headers.get("connection", "").lower() == "close"
            if self.delay and target.startswith("/v1/"):
                # A model's think time: answered later, without holding the loop (clients don't pipeline).
                asyncio.get_running_loop().call_later(self.delay, self._send, reply, close)
            else:
                self._send(reply, close)
            if close:
                return

    def _send(self, reply: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(reply)
        if close:
            transport.close()

    def reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        if method == "POST" and path.rstrip("/").endswith("/chat/completions"):
            return self.recorder.chat(headers, body)
        if method == "GET" and path == "/_records":
            return _json_reply(self.recorder.drain())
        if method == "GET" and path == "/_stats":
            return _json_reply(self.recorder.stats())
        return NOT_FOUND


async def serve(sock: socket.socket, delay: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    server = await loop.create_server(lambda: Connection(recorder, delay), sock=sock, backlog=2048)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fd", type=int, help="an inherited listening socket")
    parser.add_argument("--port", type=int, default=0, help="else bind 127.0.0.1:PORT (0: a free one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering each GenAI call")
    args = parser.parse_args(argv)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(2048)
        print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    sock.setblocking(False)
    try:
        asyncio.run(serve(sock, args.delay))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
