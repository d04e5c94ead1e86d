"""Nothing of a request outlives it: no cycle through its scope, no request held by work it hands on.

A reference cycle through the tracking scope would keep each request (its session, user, app
context) alive until the garbage collector runs: memory, and collection time, under load. So
these run with the collector off: the request must go as soon as its last reference does.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Response, request, stream_with_context

from payi_web import bind_context, get_context, track
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiTracking
from tests.flask.conftest import CHAT, make_app, openai_for, org_of_current_user


@pytest.fixture
def app(payi: PayiTracking) -> Flask:
    app = make_app()
    payi.init_app(app)
    payi.account_loader(org_of_current_user)
    return app


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _current_request() -> weakref.ref[Any]:
    return weakref.ref(request._get_current_object())  # type: ignore[attr-defined]


@pytest.mark.parametrize("keep_request_context", [False, True])
def test_a_streamed_request_is_freed_when_its_response_closes(
    app: Flask, provider: FakeProvider, no_collector: None, keep_request_context: bool
) -> None:
    client = openai_for(provider)
    requests: list[weakref.ref[Any]] = []

    @app.get("/stream")
    @track(use_case_name="stream")
    def stream() -> Response:
        requests.append(_current_request())

        def body() -> Iterator[str]:
            client.chat.completions.create(**CHAT)
            yield f"{get_context().user_id} {get_context().account_name}"

        return Response(stream_with_context(body()) if keep_request_context else body())

    web = app.test_client()
    web.get("/login/u3")
    response = web.get("/stream")
    assert response.data == b"u3 org0"
    response.close()
    del response
    assert requests[0]() is None
    assert provider.received[0].headers["xproxy-user-id"] == "u3"


def test_work_handed_on_keeps_its_attribution_but_not_the_request(
    app: Flask, provider: FakeProvider, no_collector: None
) -> None:
    client = openai_for(provider)
    requests: list[weakref.ref[Any]] = []
    later: list[Callable[[], Any]] = []

    @app.get("/hand-on")
    @track(use_case_name="hand_on")
    def hand_on() -> str:
        requests.append(_current_request())
        client.chat.completions.create(**CHAT)  # the user and account are resolved here
        later.append(bind_context(lambda: client.chat.completions.create(**CHAT)))
        return "queued"

    web = app.test_client()
    web.get("/login/u4")
    assert web.get("/hand-on").data == b"queued"
    assert requests[0]() is None  # the queued task holds the attribution, not the request
    later.pop()()
    sent = [(r.headers["xproxy-user-id"], r.headers["xproxy-account-name"]) for r in provider.received]
    assert sent == [("u4", "org1")] * 2
