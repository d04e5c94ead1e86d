"""The suite itself never reaches the network: conftest.py refuses any non-loopback lookup or connection."""

from __future__ import annotations

import socket

import httpx
import pytest


def test_lookups_and_connections_beyond_loopback_fail_at_once() -> None:
    with pytest.raises(OSError, match="never reach the network"):
        socket.getaddrinfo("api.pay-i.com", 443)
    with pytest.raises(OSError, match="never reach the network"):
        socket.create_connection(("203.0.113.7", 80), timeout=1)
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://api.pay-i.com/api/v1/ingest")


def test_loopback_still_works() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        socket.create_connection(server.getsockname(), timeout=1).close()
    finally:
        server.close()
