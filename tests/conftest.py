from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import payi_web
from payi_web.fake_provider import FakeProvider
from tests.strict_gateway import StrictGateway

pytest_plugins = ("pytester",)

_LOCAL_NAMES = {"localhost", "testserver"}
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(host: object) -> bool:
    if not isinstance(host, str) or host in _LOCAL_NAMES:
        return True  # unix sockets and the names tests serve on
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(host, bytes):
        host = host.decode()
    if host is not None and not _is_local(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests never reach the network (lookup of {host!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise ConnectionRefusedError(f"tests never reach the network (connect to {address[0]!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise ConnectionRefusedError(f"tests never reach the network (connect to {address[0]!r})")
    return _real_connect_ex(self, address)


def pytest_configure(config: pytest.Config) -> None:
    # In this process nothing may leave the machine, whatever a test or library tries: every
    # lookup and connection to anything but loopback fails at once.
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def _ledger_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # With no Pay-i API key the ledger is on by default: keep its file (and subprocesses') in a tmp dir.
    previous = os.environ.get("PAYI_LEDGER")
    os.environ["PAYI_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "payi_ledger.sqlite3")
    yield
    if previous is None:
        del os.environ["PAYI_LEDGER"]
    else:
        os.environ["PAYI_LEDGER"] = previous


@pytest.fixture(autouse=True)
def _fresh_configuration() -> Iterator[None]:
    # configure() replaces the whole configuration, so resetting it isolates every test.
    payi_web.configure()
    yield
    payi_web.uninstrument()
    payi_web.configure()


@pytest.fixture
def provider() -> FakeProvider:
    """An offline provider in this process (test packages with their own needs override it)."""
    return FakeProvider()


@pytest.fixture
def gateway(provider: FakeProvider) -> Iterator[StrictGateway]:
    """A 127.0.0.1 gateway in front of `provider` that refuses big headers, as real ones do."""
    gateway = StrictGateway(provider)
    yield gateway
    gateway.close()
