"""Each request's scope: user, account, CONTEXT, defaults, laziness, exclusions, factories, blueprints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import flask_login
import pytest
from flask import Blueprint, Flask, g, request

import payi_web
from payi_web import get_context, track
from payi_web.core.context import current_var
from payi_web.core.log import forget
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiState, PayiTracking
from payi_web.testing import CapturedCalls
from tests.flask.conftest import (
    CHAT,
    USERS,
    async_openai_for,
    context_json,
    make_app,
    openai_for,
    org_of_current_user,
    props,
)


def test_flask_login_user_account_loader_and_view_use_case(
    provider: FakeProvider, payi: PayiTracking, payi_calls: CapturedCalls
) -> None:
    app = make_app({"PAYI_LIMIT_IDS": ["monthly"], "PAYI_REQUEST_PROPERTIES": {"env": "test"}})
    payi.init_app(app)
    payi.account_loader(org_of_current_user)
    client = openai_for(provider)

    @app.post("/summarize")
    @track(use_case_name="document_summary")
    def summarize() -> Any:
        client.chat.completions.create(**CHAT)
        return context_json()

    web = app.test_client()
    web.get("/login/u4")
    body = web.post("/summarize").get_json()
    assert body == {
        "user_id": "u4",
        "account_name": "org1",
        "use_case_name": "document_summary",
        "limit_ids": ["monthly"],
        "request_properties": {"env": "test"},
    }
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name, call.context.use_case_name) == (
        "u4",
        "org1",
        "document_summary",
    )
    [sent] = provider.received
    assert sent.headers["xproxy-user-id"] == "u4"
    assert sent.headers["xproxy-account-name"] == "org1"
    assert sent.headers["xproxy-usecase-name"] == "document_summary"
    assert sent.headers["xproxy-limit-ids"] == "monthly"
    assert props(sent) == {"env": "test"}
    assert isinstance(app.extensions["payi"], PayiState)
    assert current_var.get() is None  # nothing left behind in the test's context


def test_anonymous_and_apps_without_flask_login_have_no_user(payi: PayiTracking) -> None:
    with_login = make_app()
    without_login = make_app(login=False)
    for app in (with_login, without_login):
        payi.init_app(app)
        app.get("/ctx")(context_json)
    assert with_login.test_client().get("/ctx").get_json()["user_id"] is None
    assert without_login.test_client().get("/ctx").get_json()["user_id"] is None
    with without_login.test_request_context("/"):
        assert without_login.extensions["payi"].user_id_resolver() == (None, "none")


def test_config_resolvers_win_over_decorators_and_take_import_strings(payi: PayiTracking) -> None:
    app = make_app(
        {
            "PAYI_USER_ID": "tests.flask.test_requests:header_user",
            "PAYI_ACCOUNT_NAME": "tests.flask.conftest.org_of_current_user",
        }
    )
    payi.init_app(app)

    @payi.user_id_loader
    def decorated() -> str:
        return "decorated"

    app.get("/ctx")(context_json)
    web = app.test_client()
    web.get("/login/u2")
    body = web.get("/ctx", headers={"X-User": "from-header"}).get_json()
    assert (body["user_id"], body["account_name"]) == ("from-header", "org2")


def header_user() -> str | None:
    return request.headers.get("X-User")


def test_context_callable_adds_fields_and_user_id_override(payi: PayiTracking) -> None:
    def context() -> dict[str, Any]:
        return {
            "request_properties": {"request_id": request.headers["X-Request-Id"]},
            "limit_ids": ["per-request"],
        }

    app = make_app({"PAYI_CONTEXT": context, "PAYI_LIMIT_IDS": ["app"]})
    payi.init_app(app)
    app.get("/ctx")(context_json)
    body = app.test_client().get("/ctx", headers={"X-Request-Id": "r-1"}).get_json()
    assert body["request_properties"] == {"request_id": "r-1"}
    assert body["limit_ids"] == ["app", "per-request"]


def test_lazy_resolution_zero_calls_without_genai_one_with_two_calls(
    provider: FakeProvider, payi: PayiTracking, counting: Callable[..., Any]
) -> None:
    user = counting(lambda: flask_login.current_user.get_id())
    account = counting(org_of_current_user)
    app = make_app({"PAYI_USER_ID": user})
    payi.init_app(app)
    payi.account_loader(account)
    client = openai_for(provider)

    @app.get("/nothing")
    def nothing() -> str:
        return "no GenAI call here"

    @app.get("/twice")
    def twice() -> str:
        client.chat.completions.create(**CHAT)
        client.chat.completions.create(**CHAT)
        return "two calls"

    web = app.test_client()
    web.get("/login/u1")
    for _ in range(3):
        assert web.get("/nothing").status_code == 200
    assert (user.calls, account.calls) == (0, 0)
    web.get("/twice")
    assert (user.calls, account.calls) == (1, 1)
    assert [r.headers["xproxy-user-id"] for r in provider.received] == ["u1", "u1"]
    web.get("/twice")
    assert (user.calls, account.calls) == (2, 2)  # once per request


@pytest.mark.parametrize("failure", ["raises", "bad type"])
def test_resolver_failures_are_logged_once_and_the_request_goes_on(
    provider: FakeProvider, payi: PayiTracking, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    def broken() -> Any:
        if failure == "raises":
            raise RuntimeError("account service down")
        return 42

    broken.__qualname__ = f"broken_{failure.replace(' ', '_')}"
    for kind in ("resolver", "resolver-type"):
        forget(f"{kind}:PAYI_ACCOUNT_NAME resolver {__name__}:{broken.__qualname__}")
    app = make_app({"PAYI_ACCOUNT_NAME": broken})
    payi.init_app(app)
    client = openai_for(provider)

    @app.get("/ask")
    def ask() -> Any:
        client.chat.completions.create(**CHAT)
        return context_json()

    web = app.test_client()
    web.get("/login/u3")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        bodies = [web.get("/ask").get_json() for _ in range(3)]
    assert all(b["user_id"] == "u3" and b["account_name"] is None for b in bodies)
    assert all("xproxy-account-name" not in r.headers for r in provider.received)
    logged = [r for r in caplog.records if broken.__qualname__ in r.getMessage()]
    assert len(logged) == 1
    if failure == "raises":
        assert logged[0].exc_info is not None and "account service down" in str(logged[0].exc_info[1])


def test_failing_context_callable_is_logged_once(
    payi: PayiTracking, caplog: pytest.LogCaptureFixture
) -> None:
    def context() -> Any:
        return {"usre_id": "typo"}

    forget(f"context-field:PAYI_CONTEXT {__name__}:{context.__qualname__}:usre_id")
    app = make_app({"PAYI_CONTEXT": context})
    payi.init_app(app)
    app.get("/ctx")(context_json)
    web = app.test_client()
    web.get("/login/u5")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        assert web.get("/ctx").get_json()["user_id"] == "u5"
        assert web.get("/ctx").status_code == 200
    [logged] = [r for r in caplog.records if "PAYI_CONTEXT" in r.getMessage()]
    assert "did you mean 'user_id'" in str(logged.exc_info[1])  # type: ignore[index]


def test_excluded_paths_get_no_request_scope(
    provider: FakeProvider, payi: PayiTracking, counting: Callable[..., Any], payi_calls: CapturedCalls
) -> None:
    user = counting(lambda: "someone")
    app = make_app({"PAYI_EXCLUDE_PATHS": [r"^/health", r"/internal/"], "PAYI_USER_ID": user})
    payi.init_app(app)
    client = openai_for(provider)

    @app.get("/health")
    @app.get("/api/internal/ping")
    @app.get("/api/ping")
    def ping() -> Any:
        client.chat.completions.create(**CHAT)
        return {"scoped": current_var.get() is not None}

    web = app.test_client()
    assert web.get("/health").get_json() == {"scoped": False}
    assert web.get("/api/internal/ping").get_json() == {"scoped": False}
    assert user.calls == 0
    assert web.get("/api/ping").get_json() == {"scoped": True}
    assert user.calls == 1
    assert [c.context.user_id for c in payi_calls] == [None, None, "someone"]


def test_other_before_request_hooks_and_error_handlers_run_in_the_scope(payi: PayiTracking) -> None:
    app = make_app({"PAYI_USER_ID": lambda: "u-hooks"})
    seen: dict[str, Any] = {}

    @app.before_request
    def before() -> None:  # registered before init_app: still runs inside the scope
        seen["before"] = get_context().user_id

    payi.init_app(app)

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        seen["teardown"] = get_context().user_id

    @app.errorhandler(ZeroDivisionError)
    def handler(exc: Exception) -> Any:
        seen["handler"] = get_context().user_id
        return "handled", 500

    @app.get("/boom")
    def boom() -> str:
        return str(1 / 0)

    assert app.test_client().get("/boom").status_code == 500
    assert seen == {"before": "u-hooks", "handler": "u-hooks", "teardown": "u-hooks"}
    assert current_var.get() is None


def test_app_factory_two_apps_keep_their_own_settings(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    payi = PayiTracking()

    @payi.account_loader
    def account() -> str:
        return f"account-of-{g.app_label}"

    def create_app(label: str, **config: Any) -> Flask:
        app = make_app(config, name=label)
        payi.init_app(app)
        client = openai_for(provider)

        @app.before_request
        def label_request() -> None:
            g.app_label = label

        @app.get("/ask")
        def ask() -> Any:
            client.chat.completions.create(**CHAT)
            return context_json()

        return app

    first = create_app("first", PAYI_LIMIT_IDS=["first-cap"], PAYI_USE_CASE_NAME="first_default")
    second = create_app("second", PAYI_LIMIT_IDS=["second-cap"], PAYI_USER_ID=lambda: "service")
    assert first.extensions["payi"].extension is second.extensions["payi"].extension is payi
    a, b = first.test_client(), second.test_client()
    a.get("/login/u7")
    b.get("/login/u7")
    for _ in range(2):
        assert a.get("/ask").get_json() == {
            "user_id": "u7",
            "account_name": "account-of-first",
            "use_case_name": "first_default",
            "limit_ids": ["first-cap"],
            "request_properties": None,
        }
        assert b.get("/ask").get_json() == {
            "user_id": "service",
            "account_name": "account-of-second",
            "use_case_name": None,
            "limit_ids": ["second-cap"],
            "request_properties": None,
        }
    assert [c.context.limit_ids for c in payi_calls] == [("first-cap",), ("second-cap",)] * 2
    # Outside requests, the process root is the app initialised last.
    assert get_context().limit_ids == ("second-cap",)


def test_blueprint_default_use_case_and_a_views_own_track_wins(payi: PayiTracking) -> None:
    app = make_app()
    payi.init_app(app)
    admin = Blueprint("admin", __name__)
    reports = Blueprint("reports", __name__)
    payi.track_blueprint(admin, use_case_name="admin_tools", limit_ids=["admin-cap"])
    payi.track_blueprint(reports, use_case_step="reports")

    admin.get("/plain")(context_json)

    @admin.get("/own")
    @track(use_case_name="bulk_import")
    def own() -> Any:
        return context_json()

    @reports.get("/weekly")
    def weekly() -> Any:
        ctx = get_context()
        return {"name": ctx.use_case_name, "step": ctx.use_case_step, "id": ctx.use_case_id}

    admin.register_blueprint(reports, url_prefix="/reports")
    app.register_blueprint(admin, url_prefix="/admin")
    app.get("/outside")(context_json)
    web = app.test_client()
    plain = web.get("/admin/plain").get_json()
    assert (plain["use_case_name"], plain["limit_ids"]) == ("admin_tools", ["admin-cap"])
    own_body = web.get("/admin/own").get_json()
    assert (own_body["use_case_name"], own_body["limit_ids"]) == ("bulk_import", ["admin-cap"])
    nested = web.get("/admin/reports/weekly").get_json()
    assert (nested["name"], nested["step"]) == ("admin_tools", "reports") and nested["id"]
    assert web.get("/outside").get_json()["use_case_name"] is None
    with pytest.raises(TypeError, match="did you mean 'use_case_name'"):
        payi.track_blueprint(admin, usecase_name="x")
    with pytest.raises(TypeError, match="expected a flask Blueprint"):
        payi.track_blueprint(app, use_case_name="x")  # type: ignore[arg-type]


def test_async_views_keep_the_scope(
    provider: FakeProvider, payi: PayiTracking, payi_calls: CapturedCalls
) -> None:
    app = make_app({"PAYI_REQUEST_PROPERTIES": {"kind": "async"}})
    payi.init_app(app)
    payi.account_loader(org_of_current_user)

    @app.get("/async")
    @track(use_case_name="async_answer")
    async def answer() -> Any:
        client = async_openai_for(provider)
        await asyncio.sleep(0)
        await client.chat.completions.create(**CHAT)
        stream = await client.chat.completions.create(**CHAT, stream=True)
        async for _ in stream:
            pass
        await client.close()
        return context_json()

    web = app.test_client()
    web.get("/login/u8")
    body = web.get("/async").get_json()
    assert (body["user_id"], body["account_name"], body["use_case_name"]) == ("u8", "org2", "async_answer")
    assert len(payi_calls) == 2
    for call in payi_calls:
        assert (call.context.user_id, call.context.account_name, call.context.use_case_name) == (
            "u8",
            "org2",
            "async_answer",
        )
    assert {r.headers["xproxy-user-id"] for r in provider.received} == {"u8"}
    assert current_var.get() is None


def test_requests_in_one_thread_do_not_leak_into_each_other(payi: PayiTracking) -> None:
    app = make_app()
    payi.init_app(app)
    app.get("/ctx")(context_json)
    web = app.test_client()
    users = list(USERS)[:4]
    for user in users * 2:
        web.get(f"/login/{user}")
        assert web.get("/ctx").get_json()["user_id"] == user
        assert current_var.get() is None
    payi_web.configure()


@pytest.mark.parametrize(
    ("before_call", "expected"),
    [
        ("nothing", "u2"),  # the view never touched current_user: the resolver loads it
        ("read", "u2"),  # current_user loaded by the view
        ("switch", "u7"),  # login_user() of another user inside the view, before the call
        ("logout", None),  # logout_user() inside the view, before the call
    ],
)
def test_the_default_user_id_is_flask_logins_user_at_the_first_call(
    provider: FakeProvider, payi: PayiTracking, before_call: str, expected: str | None
) -> None:
    app = make_app()
    payi.init_app(app)
    client = openai_for(provider)

    @app.post("/chat")
    def chat() -> Any:
        if before_call == "read":
            assert flask_login.current_user.get_id() == "u2"
        elif before_call == "switch":
            flask_login.login_user(USERS["u7"])
        elif before_call == "logout":
            flask_login.logout_user()
        client.chat.completions.create(**CHAT)
        return {"user_id": get_context().user_id, "current": flask_login.current_user.get_id()}

    web = app.test_client()
    web.get("/login/u2")
    body = web.post("/chat").get_json()
    assert body == {"user_id": expected, "current": expected}
    [sent] = provider.received
    assert sent.headers.get("xproxy-user-id") == expected
