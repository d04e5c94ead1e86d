"""Flask apps with Flask-Login users, real OpenAI clients on an in-process fake provider."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import flask_login
import openai
import pytest
from flask import Flask, jsonify

from payi_web import get_context
from payi_web.fake_provider import FakeProvider, ReceivedRequest
from payi_web.flask import PayiTracking
from tests.instrumented import async_openai_client, openai_client

# A header host: requests to it carry the Pay-i headers, so the fake provider sees them too.
LLM = "https://llm.internal"
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str, org: str) -> None:
        self.id = user_id
        self.org = org


USERS = {f"u{i}": User(f"u{i}", f"org{i % 3}") for i in range(12)}


def org_of_current_user() -> str | None:
    user = flask_login.current_user
    return user.org if user.is_authenticated else None  # type: ignore[no-any-return]


def openai_for(provider: FakeProvider) -> openai.OpenAI:
    """A real OpenAI client on `provider`, in-process (httpx2 under openai 3, httpx before)."""
    return openai_client(provider, LLM + "/v1")


def async_openai_for(provider: FakeProvider) -> openai.AsyncOpenAI:
    return async_openai_client(provider, LLM + "/v1")


def context_json() -> Any:
    ctx = get_context()
    return jsonify(
        user_id=ctx.user_id,
        account_name=ctx.account_name,
        use_case_name=ctx.use_case_name,
        limit_ids=list(ctx.limit_ids or ()),
        request_properties=ctx.request_properties,
    )


def props(received: ReceivedRequest) -> dict[str, Any]:
    """The request properties a provider request carried (base64 JSON: header hosts are proxy-style)."""
    value = received.headers.get("xproxy-request-properties")
    return json.loads(base64.b64decode(value)) if value else {}


def make_app(config: dict[str, Any] | None = None, *, login: bool = True, name: str = "app") -> Flask:
    """An app with the given PAYI_* config, and Flask-Login users (log in at /login/<id>)."""
    app = Flask(name)
    app.config.update(SECRET_KEY="test", PAYI_HEADER_HOSTS=[LLM])
    app.config.update(config or {})
    if login:
        manager = flask_login.LoginManager(app)
        manager.user_loader(USERS.get)

        @app.get("/login/<user_id>")
        def login_view(user_id: str) -> str:
            flask_login.login_user(USERS[user_id])
            return "ok"

    return app


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def counting() -> Callable[..., Callable[[], Any]]:
    """counting(fn) -> fn that counts its calls in `.calls`."""

    def wrap(fn: Callable[[], Any]) -> Callable[[], Any]:
        def resolver() -> Any:
            resolver.calls += 1  # type: ignore[attr-defined]
            return fn()

        resolver.calls = 0  # type: ignore[attr-defined]
        return resolver

    return wrap


@pytest.fixture
def payi() -> Iterator[PayiTracking]:
    yield PayiTracking()
