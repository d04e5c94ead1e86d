"""Streamed responses: the body, produced after the view returned, keeps the request's and view's scope."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask_login
import pytest
from flask import Blueprint, Flask, Response, request, stream_with_context
from flask.globals import _cv_app, _cv_request

from payi_web import get_context, track, track_context
from payi_web.core.context import current_var
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiTracking
from payi_web.testing import CapturedCalls
from tests.flask.conftest import CHAT, make_app, openai_for, org_of_current_user


def _line() -> str:
    ctx = get_context()
    return json.dumps([ctx.user_id, ctx.account_name, ctx.use_case_name, ctx.use_case_step]) + "\n"


def _lines(body: bytes) -> list[list[Any]]:
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.fixture
def app(provider: FakeProvider, payi: PayiTracking, counting: Callable[..., Any]) -> Flask:
    app = make_app()
    payi.init_app(app)
    app.config["account"] = counting(org_of_current_user)
    payi.account_loader(app.config["account"])
    client = openai_for(provider)

    def streamed_answer() -> Iterator[str]:
        """A streamed GenAI call inside the response body, then the context as a line."""
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            if chunk.choices:
                pass
        yield _line()
        with track_context(use_case_step="follow_up"):
            yield _line()
        yield _line()

    @app.get("/generator-view")
    @track(use_case_name="generator_view")
    def generator_view() -> Iterator[str]:
        yield from streamed_answer()

    @app.get("/returns-generator")
    @track(use_case_name="returns_generator")
    def returns_generator() -> Any:
        return streamed_answer()

    @app.get("/response")
    @track(use_case_name="plain_response")
    def plain_response() -> Response:
        return Response(streamed_answer(), mimetype="text/plain")

    @app.get("/with-context")
    @track(use_case_name="with_context")
    def with_context() -> Response:
        def body() -> Iterator[str]:
            yield json.dumps(request.args["greeting"]) + "\n"  # the request context is back while it runs
            yield from streamed_answer()

        return Response(stream_with_context(body()))

    @app.get("/untracked")
    def untracked() -> Response:
        return Response(streamed_answer())

    @app.get("/helper")
    @track(use_case_name="outer_view")
    def helper_view() -> Response:
        return make_stream()

    @track(use_case_step="helper")
    def make_stream() -> Response:
        return Response(streamed_answer())

    @app.get("/async-stream")
    @track(use_case_name="async_stream")
    async def async_stream() -> Response:
        return Response(streamed_answer())

    tools = Blueprint("tools", __name__)
    payi.track_blueprint(tools, use_case_name="tools")
    tools.get("/stream")(untracked)
    app.register_blueprint(tools, url_prefix="/tools")
    return app


def _web(app: Flask, user: str = "u4") -> Any:
    web = app.test_client()
    web.get(f"/login/{user}")
    return web


@pytest.mark.parametrize(
    ("path", "use_case", "step"),
    [
        ("/generator-view", "generator_view", None),
        ("/returns-generator", "returns_generator", None),
        ("/response", "plain_response", None),
        ("/with-context?greeting=hi", "with_context", None),
        ("/untracked", None, None),
        ("/tools/stream", "tools", None),
        ("/helper", "outer_view", "helper"),
        ("/async-stream", "async_stream", None),
    ],
)
def test_streamed_bodies_keep_user_account_and_use_case(
    app: Flask, provider: FakeProvider, payi_calls: CapturedCalls, path: str, use_case: str, step: str | None
) -> None:
    response = _web(app).get(path)
    assert response.status_code == 200
    lines = _lines(response.data)
    if path.startswith("/with-context"):
        assert lines.pop(0) == "hi"
    expected = ["u4", "org1", use_case, step]
    assert lines == [expected, [*expected[:3], "follow_up" if use_case else None], expected]
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name, call.context.use_case_name) == tuple(
        expected[:3]
    )
    [sent] = provider.received
    assert sent.headers["xproxy-user-id"] == "u4"
    assert sent.headers["xproxy-account-name"] == "org1"
    assert sent.headers.get("xproxy-usecase-name") == use_case
    assert app.config["account"].calls == 1
    assert current_var.get() is None


@pytest.mark.parametrize("shape", ["generator view", "response of a tracked generator", "both tracked"])
def test_the_user_and_account_a_tracked_generator_body_needs_are_resolved_before_the_request_ends(
    app: Flask, provider: FakeProvider, payi_calls: CapturedCalls, payi: PayiTracking, shape: str
) -> None:
    # The body runs after the request context is gone: what it will need is resolved before it
    # ends, once. Six users at once, each stopped after its first chunk, before its GenAI call.
    users = [f"u{i}" for i in range(6)]
    resolved_for: list[str] = []
    lock = threading.Lock()

    @payi.account_loader
    def account() -> str | None:
        with lock:
            resolved_for.append(flask_login.current_user.id)
        return org_of_current_user()

    client = openai_for(provider)
    all_at_first_chunk = threading.Barrier(len(users), timeout=10)

    @track(use_case_name="later")
    def answer_later() -> Iterator[str]:
        yield "first\n"
        client.chat.completions.create(**CHAT)
        yield _line()

    if shape == "generator view":
        view: Callable[[], Any] = answer_later
    elif shape == "response of a tracked generator":
        view = lambda: Response(answer_later())  # noqa: E731
    else:
        view = track(use_case_step="view")(lambda: Response(answer_later()))
    app.add_url_rule("/later", "later", view)

    def read(user: str) -> list[list[Any]]:
        response = _web(app, user).get("/later", buffered=False)
        chunks = iter(response.response)
        assert next(chunks) == b"first\n"
        with lock:
            assert user in resolved_for  # before the body's call, after the request ended
        all_at_first_chunk.wait()
        lines = _lines(b"".join(chunks))
        response.close()
        return lines

    with ThreadPoolExecutor(len(users)) as pool:
        bodies = dict(zip(users, pool.map(read, users), strict=True))
    for user, lines in bodies.items():
        assert lines == [[user, f"org{int(user[1:]) % 3}", "later", None]]
    assert sorted(resolved_for) == sorted(users)  # once per request
    assert sorted(
        (r.headers["xproxy-user-id"], r.headers["xproxy-account-name"]) for r in provider.received
    ) == [(user, f"org{int(user[1:]) % 3}") for user in users]
    assert {call.context.user_id for call in payi_calls} == set(users)
    assert current_var.get() is None


def test_the_body_is_produced_outside_the_request_context_and_leaves_nothing_behind(
    app: Flask, payi_calls: CapturedCalls
) -> None:
    seen: list[Any] = []

    @app.get("/probe")
    @track(use_case_name="probe")
    def probe() -> Response:
        def body() -> Iterator[str]:
            for i in range(3):
                seen.append(
                    (_cv_request.get(None) is None, get_context().user_id, get_context().use_case_name)
                )
                yield f"{i}\n"

        return Response(body())

    response = _web(app, "u2").get("/probe", buffered=False)
    chunks = []
    for chunk in response.response:
        # Between two steps the test's own context is untouched.
        assert current_var.get() is None and _cv_request.get(None) is None
        chunks.append(chunk)
    response.close()
    assert b"".join(chunks) == b"0\n1\n2\n"
    assert seen == [(True, "u2", "probe")] * 3
    assert current_var.get() is None and _cv_app.get(None) is None


def test_a_body_closed_before_it_is_read_ends_in_the_scope(app: Flask) -> None:
    events: list[Any] = []

    @app.get("/closed")
    @track(use_case_name="closed")
    def closed() -> Response:
        def body() -> Iterator[str]:
            try:
                yield "never sent"
            finally:
                events.append(("finally", get_context().user_id, get_context().use_case_name))

        generator = body()
        next(generator)  # started: closing it runs its finally block
        return Response(generator)

    web = _web(app, "u5")
    response = web.get("/closed", buffered=False)
    response.close()
    assert events == [("finally", "u5", "closed")]
    assert web.head("/closed").status_code == 200
    assert current_var.get() is None


def test_lazy_user_resolution_inside_a_body_that_keeps_the_request_context(
    provider: FakeProvider, payi: PayiTracking, counting: Callable[..., Any], payi_calls: CapturedCalls
) -> None:
    # Flask 3.0's stream_with_context pushes the request context while the view runs, so the
    # teardown happens at the end of the body, inside a step: the user is then resolved lazily,
    # in the body, and the scope still ends with the response.
    user = counting(lambda: flask_login.current_user.get_id())
    app = make_app({"PAYI_USER_ID": user})
    payi.init_app(app)
    client = openai_for(provider)

    def flask30_stream_with_context(gen: Iterator[str]) -> Iterator[str]:
        def generator() -> Iterator[str]:
            ctx = _cv_request.get()
            with ctx:
                yield None  # type: ignore[misc]
                try:
                    yield from gen
                finally:
                    gen.close()  # type: ignore[attr-defined]

        wrapped = generator()
        next(wrapped)
        return wrapped

    @app.get("/old-style")
    @track(use_case_name="old_style")
    def old_style() -> Response:
        def body() -> Iterator[str]:
            yield "start\n"
            assert user.calls == 0
            client.chat.completions.create(**CHAT)
            yield _line()

        return Response(flask30_stream_with_context(body()))

    torn_down: list[Any] = []
    app.teardown_request(lambda exc: torn_down.append(get_context().user_id))
    web = _web(app, "u9")
    torn_down.clear()  # the login request's
    user.calls = 0
    assert _lines(web.get("/old-style").data[len("start\n") :]) == [["u9", None, "old_style", None]]
    assert user.calls == 1
    assert torn_down == ["u9"]  # teardown ran inside the body's last step
    assert payi_calls[0].context.user_id == "u9"
    assert current_var.get() is None


def test_streamed_responses_without_genai_still_resolve_once_non_streamed_not_at_all(
    app: Flask,
) -> None:
    @app.get("/quiet-stream")
    def quiet_stream() -> Response:
        return Response(iter(["a", "b"]))

    @app.get("/quiet")
    def quiet() -> str:
        return "ab"

    web = _web(app)
    assert web.get("/quiet").data == b"ab"
    assert app.config["account"].calls == 0
    assert web.get("/quiet-stream").data == b"ab"
    # The body might need the account after the request context is gone: resolved at teardown.
    assert app.config["account"].calls == 1


def test_file_responses_are_not_wrapped(app: Flask, tmp_path: Any) -> None:
    from flask import send_file

    target = tmp_path / "report.txt"
    target.write_text("file body")

    @app.get("/file")
    @track(use_case_name="file")
    def file() -> Response:
        return send_file(target)

    response = _web(app).get("/file")
    assert response.data == b"file body"
    assert app.config["account"].calls == 0


def test_generators_returned_by_tracked_functions_are_bound_only_in_flask_requests(app: Flask) -> None:
    @track(use_case_name="outside")
    def numbers() -> Iterator[str | None]:
        return (get_context().use_case_name for _ in range(2))

    assert list(numbers()) == [None, None]  # outside a request: the core's behaviour
    with app.test_request_context("/"):
        assert list(numbers()) == ["outside", "outside"]


@pytest.mark.parametrize("wrap", ["plain", "stream_with_context"])
def test_a_scope_the_body_enters_around_a_yield_stays_current_after_it(
    app: Flask,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    caplog: pytest.LogCaptureFixture,
    wrap: str,
) -> None:
    # Six users at once, each body stopped mid-scope until all six are: every call made after a
    # yield inside `with track_context()` keeps that scope and its own user, none another's.
    users = [f"u{i}" for i in range(6)]
    all_mid_scope = threading.Barrier(len(users), timeout=10)
    client = openai_for(provider)

    @app.get("/drafts")
    @track(use_case_name="drafts")
    def drafts() -> Response:
        def body() -> Iterator[str]:
            with track_context(use_case_step="drafting"):
                yield _line()
                all_mid_scope.wait()
                for _ in client.chat.completions.create(**CHAT, stream=True):
                    pass
                yield _line()
            yield _line()

        return Response(stream_with_context(body()) if wrap == "stream_with_context" else body())

    def read(user: str) -> list[list[Any]]:
        return _lines(_web(app, user).get("/drafts").data)

    with ThreadPoolExecutor(len(users)) as pool:
        bodies = dict(zip(users, pool.map(read, users), strict=True))
    for user, lines in bodies.items():
        org = f"org{int(user[1:]) % 3}"
        assert lines == [[user, org, "drafts", "drafting"]] * 2 + [[user, org, "drafts", None]]
    assert sorted((c.context.user_id, c.context.use_case_step) for c in payi_calls) == [
        (user, "drafting") for user in users
    ]
    assert sorted(r.headers["xproxy-usecase-step"] for r in provider.received) == ["drafting"] * 6
    assert not [r for r in caplog.records if "out of order" in r.getMessage()]
    assert current_var.get() is None
