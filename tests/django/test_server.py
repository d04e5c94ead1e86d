"""A real ASGI server (uvicorn on 127.0.0.1) under many concurrent requests from different users.

Sync and async views, streamed and not, session and DRF token auth, all making real OpenAI calls
to a fake provider served on 127.0.0.1: every call carries exactly its own request's user,
account, use case and request id, in the call records and in the headers the provider received.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvicorn
from django.core.asgi import get_asgi_application
from django.test import Client
from rest_framework.authtoken.models import Token

from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .project import genai

REQUESTS = 70
USERS = 12
# (method, path, use case, auth)
KINDS = [
    ("GET", "/summary/", "summary", "session"),
    ("GET", "/achat/", "achat", "session"),
    ("GET", "/stream/", "stream", "session"),
    ("GET", "/astream/", "astream", "session"),
    ("POST", "/api/chat/", "drf", "token"),
    ("GET", "/acbv/", "acbv", "session"),
    ("GET", "/blocking/", "blocking", "session"),  # a sync client on the event loop
]


@pytest.fixture
def served_provider(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    # socketserver's default listen backlog (5) drops connections under this many at once.
    monkeypatch.setattr(ThreadingHTTPServer, "request_queue_size", 256)
    provider = FakeProvider(stream_delay=0.002)
    url = provider.serve()
    settings.PAYI = {**settings.PAYI, "HEADER_HOSTS": [url]}
    genai.use(url + "/v1")
    yield provider
    genai.target = None
    provider.close()


@pytest.fixture
def server() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(get_asgi_application(), lifespan="off", log_level="warning", backlog=256)
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 10
    while not app_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    app_server.should_exit = True
    thread.join(10)
    sock.close()


def _properties(header: str) -> dict[str, str]:
    return json.loads(base64.b64decode(header))  # type: ignore[no-any-return]


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_concurrent_requests_on_a_real_asgi_server_each_carry_their_own_attribution(
    make_user: Any, served_provider: FakeProvider, server: str, payi_calls: CapturedCalls
) -> None:
    users = []
    for n in range(USERS):
        user = make_user(f"user{n}", account=f"account{n % 4}")
        login = Client()
        login.force_login(user)
        users.append((user, login.cookies["sessionid"].value, Token.objects.create(user=user).key))

    expected: dict[str, tuple[str, str, str]] = {}

    async def one(http: httpx.AsyncClient, i: int) -> None:
        user, session, token = users[i % USERS]
        method, path, use_case, auth = KINDS[i % len(KINDS)]
        request_id = f"req-{i}"
        expected[request_id] = (str(user.pk), f"account{(i % USERS) % 4}", use_case)
        headers = {"X-Request-Id": request_id}
        if auth == "token":
            headers["Authorization"] = f"Token {token}"
        else:
            headers["Cookie"] = f"sessionid={session}"
        response = await http.request(method, server + path, headers=headers)
        assert response.status_code == 200, (path, response.text[:300])
        assert "offline demo model" in response.text

    async def main() -> None:
        limits = httpx.Limits(max_connections=REQUESTS)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            await asyncio.wait_for(asyncio.gather(*(one(http, i) for i in range(REQUESTS))), 60)

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started

    assert len(payi_calls) == REQUESTS, elapsed
    seen = set()
    for call in payi_calls:
        request_id = (call.context.request_properties or {}).get("request_id")
        assert request_id in expected, call.context
        user_id, account, use_case = expected[request_id]
        assert (call.context.user_id, call.context.account_name, call.context.use_case_name) == (
            user_id,
            account,
            use_case,
        ), request_id
        assert call.status == 200 and not call.failed and call.proxied
        assert call.streamed == (use_case in ("stream", "astream"))
        seen.add(request_id)
    assert seen == set(expected)

    assert len(served_provider.received) == REQUESTS
    for sent in served_provider.received:
        request_id = _properties(sent.headers["xproxy-request-properties"])["request_id"]
        user_id, account, use_case = expected[request_id]
        assert sent.headers["xproxy-user-id"] == user_id
        assert sent.headers["xproxy-account-name"] == account
        assert sent.headers["xproxy-usecase-name"] == use_case
