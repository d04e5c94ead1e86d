"""A real threaded server on 127.0.0.1: many concurrent requests from different Flask-Login users.

Each request makes one OpenAI call (plain, streamed in the response body, or from an async view)
to a fake provider served on 127.0.0.1. Every recorded call, and every request the provider
received, carries exactly its own request's user, account and use case (matched by a request id
that `PAYI_CONTEXT` puts in the request properties).
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from flask import Flask, Response, request, stream_with_context
from werkzeug.serving import make_server

from payi_web import get_context, track
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiTracking
from payi_web.testing import CapturedCalls
from tests.flask.conftest import CHAT, USERS, make_app, org_of_current_user
from tests.instrumented import OPENAI_HTTP

REQUESTS = 96
KINDS = ("ask", "stream", "stream-ctx", "async")


def request_context() -> dict[str, Any]:
    return {"request_properties": {"request_id": request.headers["X-Request-Id"]}}


@pytest.fixture
def served_provider() -> Iterator[tuple[FakeProvider, str]]:
    provider = FakeProvider(stream_delay=0.001)
    url = provider.serve()
    yield provider, url
    provider.close()


def build_app(provider_url: str) -> Flask:
    app = make_app({"PAYI_HEADER_HOSTS": [provider_url], "PAYI_CONTEXT": request_context})
    payi = PayiTracking(app)
    payi.account_loader(org_of_current_user)
    http = OPENAI_HTTP.Client(trust_env=False, timeout=10)
    client = openai.OpenAI(api_key="sk-test", base_url=provider_url + "/v1", http_client=http, max_retries=0)

    def who() -> str:
        ctx = get_context()
        return json.dumps([ctx.user_id, ctx.account_name, ctx.use_case_name])

    def streamed() -> Iterator[str]:
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                yield "."
        yield who()

    @app.post("/ask")
    @track(use_case_name="ask")
    def ask() -> str:
        client.chat.completions.create(**CHAT)
        return who()

    @app.get("/stream")
    @track(use_case_name="stream")
    def stream() -> Response:
        return Response(streamed(), mimetype="text/plain")  # produced after the request context ended

    @app.get("/stream-ctx")
    @track(use_case_name="stream_ctx")
    def stream_ctx() -> Response:
        return Response(stream_with_context(streamed()), mimetype="text/plain")

    @app.get("/async")
    @track(use_case_name="async")
    async def async_view() -> str:
        http = OPENAI_HTTP.AsyncClient(trust_env=False, timeout=10)
        async with openai.AsyncOpenAI(
            api_key="sk-test", base_url=provider_url + "/v1", http_client=http, max_retries=0
        ) as aclient:
            await aclient.chat.completions.create(**CHAT)
        return who()

    return app


@pytest.fixture
def server(served_provider: tuple[FakeProvider, str]) -> Iterator[str]:
    app = build_app(served_provider[1])
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True, name="flask-test-server")
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def test_concurrent_users_each_call_carries_its_own_request(
    server: str, served_provider: tuple[FakeProvider, str], payi_calls: CapturedCalls
) -> None:
    provider = served_provider[0]
    users = list(USERS.values())
    openers = {}
    for user in users:  # each user logs in with Flask-Login: its own session cookie
        openers[user.id] = _opener()
        assert openers[user.id].open(f"{server}/login/{user.id}", timeout=10).read() == b"ok"
    expected: dict[str, tuple[str, str, str]] = {}
    plan = []
    for i in range(REQUESTS):
        user = users[(i * 5) % len(users)]
        kind = KINDS[i % len(KINDS)]
        request_id = f"r{i}"
        expected[request_id] = (user.id, user.org, kind.replace("-", "_"))
        plan.append((request_id, user.id, kind))

    def run(step: tuple[str, str, str]) -> tuple[str, str]:
        request_id, user_id, kind = step
        req = urllib.request.Request(
            f"{server}/{kind}",
            method="POST" if kind == "ask" else "GET",
            headers={"X-Request-Id": request_id},
        )
        with openers[user_id].open(req, timeout=20) as response:
            return request_id, response.read().decode()

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(run, plan))
    elapsed = time.monotonic() - start
    assert elapsed < 30, elapsed

    for request_id, body in results:  # what the view and the streamed body saw
        assert json.loads(body.lstrip(".")) == list(expected[request_id]), request_id
    assert len(payi_calls) == REQUESTS
    seen = set()
    for call in payi_calls:
        request_id = (call.context.request_properties or {})["request_id"]
        seen.add(request_id)
        ctx = call.context
        assert (ctx.user_id, ctx.account_name, ctx.use_case_name) == expected[request_id], request_id
        assert call.status == 200 and not call.failed
        assert call.streamed == (request_id in {s[0] for s in plan if s[2].startswith("stream")})
    assert seen == set(expected)
    assert len(provider.received) == REQUESTS
    for received in provider.received:
        request_id = json.loads(base64.b64decode(received.headers["xproxy-request-properties"]))["request_id"]
        user_id, account, use_case = expected[request_id]
        assert received.headers["xproxy-user-id"] == user_id
        assert received.headers["xproxy-account-name"] == account
        assert received.headers["xproxy-usecase-name"] == use_case
