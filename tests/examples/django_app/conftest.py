"""The example Django project's end-to-end tests, run in their own process by ../test_django_example.py.

That process has DJANGO_SETTINGS_MODULE=example_django.settings, and no API key: the example
answers with its offline model, in-process.
"""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

import payi_web
from example_django.assistant.demo_users import DEMO_USERS
from examples_shared import genai
from payi_web.django import conf
from payi_web.fake_provider import FakeProvider

PASSWORDS = {username: password for username, password, _ in DEMO_USERS}
_real_getaddrinfo = socket.getaddrinfo


def _local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "localhost", "testserver"):
        try:
            local = ipaddress.ip_address(name).is_loopback
        except ValueError:
            local = False
        if not local:
            raise socket.gaierror(socket.EAI_NONAME, f"these tests never reach the network ({name!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    # This process does not load the suite's conftest (and its network guard): the same rule here.
    socket.getaddrinfo = _local_only


@pytest.fixture(autouse=True)
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own ledger file; the settings applied again to write to it."""
    path = tmp_path / "payi_ledger.sqlite3"
    monkeypatch.setenv("PAYI_LEDGER", str(path))
    conf.reload()
    yield path
    payi_web.flush(5)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def offline_model() -> FakeProvider:
    """The example's offline model, with no request received yet (and no pause between streamed chunks)."""
    model = genai.offline_model()
    model.received.clear()
    model.stream_delay = 0
    return model


@pytest.fixture
def demo_users(db: None) -> None:
    call_command("create_demo_users", stdout=io.StringIO())


@pytest.fixture
def login(demo_users: None) -> Callable[..., Client]:
    """login("alice") -> a test client with alice's session (logged in through the login form)."""

    def log_in(username: str, client_class: type[Client] = Client) -> Client:
        client = client_class()
        response = client.post("/login/", {"username": username, "password": PASSWORDS[username]})
        assert response.status_code == 302, response.content[:500]
        return client

    return log_in
