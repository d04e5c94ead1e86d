"""Isolation under load, on real servers: the reduced run of the harness in `bench/load/`.

Each server model (Django under uvicorn with async views, Django and Flask under gunicorn's
gthread worker) is started as a real subprocess on 127.0.0.1, with the same app without
payi-web next to it, and a few hundred requests from many logged-in users at once make sync,
async, streamed and thread-pool GenAI calls to a fake provider process. Every call the provider
received must carry exactly the user, account, use case and request properties of the request
that made it; with payi-web off, no Pay-i header at all.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask_login
import pytest
from flask import Flask

import payi_web
from bench.load.harness import MODELS, ModelResult, Options, User, check, report, run
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiTracking
from tests.instrumented import CHAT, openai_client


@pytest.mark.parametrize("model", list(MODELS))
def test_many_users_at_once_on_a_real_server_each_call_carries_its_own_request(model: str) -> None:
    options = Options(models=(model,), users=24, phase=120, pairs=1, warmup=60, max_seconds=60)
    [result] = asyncio.run(run(options))
    text = report([result], options)
    assert result.mismatches == 0, text
    assert result.missing == 0 and result.errors == 0, text
    assert result.on.requests == 180 and result.off.requests == 180, text
    assert result.on.calls > result.on.requests, text  # plans of one to three calls
    assert not result.log_issues, text


def test_the_check_counts_every_kind_of_wrong_attribution() -> None:
    alice, bob = User("alice", "1", "acme"), User("bob", "2", "globex")
    expected = {"r1": (alice, "ys"), "r2": (bob, "t")}

    def call(rid: str, kind: str, user: User, use_case: str, props_rid: str) -> list[object]:
        props = {"request_id": props_rid, "call": kind}
        return [rid, kind, user.user_id, user.account, use_case, props, True]

    right = [call("r1", "y", alice, "chat_ys", "r1"), call("r1", "s", alice, "chat_ys", "r1")]
    right.append(call("r2", "t", bob, "chat_t", "r2"))
    result = ModelResult("m")
    check("p", True, expected, right, result)
    assert (result.mismatches, result.missing, result.on.calls) == (0, 0, 3)

    wrong = [
        call("r1", "y", bob, "chat_ys", "r1"),  # another request's user and account
        call("r1", "s", alice, "chat_t", "r1"),  # another request's use case
        call("r2", "t", bob, "chat_t", "r1"),  # another request's request properties
        call("r2", "t", bob, "chat_t", "r2"),  # a second time
        call("r3", "y", bob, "chat_y", "r3"),  # no request of this phase
    ]
    result = ModelResult("m")
    check("p", True, expected, wrong, result)
    assert (result.mismatches, result.missing) == (5, 0)

    result = ModelResult("m")
    check("p", True, expected, right[:2], result)
    assert (result.mismatches, result.missing) == (0, 1)

    result = ModelResult("m")
    check("p", False, expected, right, result)  # payi-web off: no Pay-i header may arrive
    assert (result.mismatches, result.off.calls) == (3, 3)


def test_the_ratio_comes_with_the_interval_that_noise_alone_would_give_it() -> None:
    # Pairs whose on/off ratios scatter widely give a wide interval around the run's ratio; the
    # same mean from steady pairs, a narrow one. (Each phase of a pair serves the same requests.)
    def result(pair_ratios: list[float]) -> ModelResult:
        r = ModelResult("m")
        r.off.phase_rates = [100.0] * len(pair_ratios)
        r.on.phase_rates = [100.0 * x for x in pair_ratios]
        r.on.timed_requests = r.off.timed_requests = 250 * len(pair_ratios)
        r.on.seconds = sum(2.5 / x for x in pair_ratios)
        r.off.seconds = 2.5 * len(pair_ratios)
        r.on.phase_steal = r.off.phase_steal = [0.0] * len(pair_ratios)
        return r

    noisy = result([0.85, 1.05, 0.9, 1.0, 0.88, 1.02, 0.95, 0.96] * 3)
    steady = result([0.95, 0.96, 0.955, 0.958, 0.952, 0.954, 0.956, 0.957] * 3)
    low, high = noisy.ratio_interval()  # type: ignore[misc]
    assert low < noisy.ratio < high and high - low > 0.05
    low, high = steady.ratio_interval()  # type: ignore[misc]
    assert low < steady.ratio < high and high - low < 0.01
    assert result([0.95]).ratio_interval() is None  # one pair: no spread to measure
    assert "95% bootstrap interval over the pairs" in report([noisy], Options())


def test_flask_a_thread_pool_call_made_first_resolves_the_user_in_the_request() -> None:
    """The worker thread has no request context: the resolvers still see the request's."""

    class User(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str, account: str) -> None:
            self.id, self.account = user_id, account

    users = {"u1": User("u1", "acme"), "u2": User("u2", "globex")}
    provider = FakeProvider()
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", PAYI_HEADER_HOSTS=["https://llm.internal"], PAYI_LEDGER=False)
    flask_login.LoginManager(app).user_loader(users.get)
    payi = PayiTracking(app)
    payi.account_loader(lambda: flask_login.current_user.account)
    client = openai_client(provider, "https://llm.internal/v1")
    pool = ThreadPoolExecutor(2)

    @app.get("/login/<user_id>")
    def login(user_id: str) -> str:
        flask_login.login_user(users[user_id])
        return "ok"

    @app.get("/fan-out")
    @payi_web.track(use_case_name="fan_out")
    def fan_out() -> Any:
        first = pool.submit(payi_web.bind_context(lambda: client.chat.completions.create(**CHAT)))
        first.result()
        client.chat.completions.create(**CHAT)  # the request's own thread: the same user
        return "done"

    try:
        for user_id in ("u1", "u2"):
            web = app.test_client()
            web.get(f"/login/{user_id}")
            assert web.get("/fan-out").status_code == 200
        sent = [r.headers for r in provider.received]
        assert [(h.get("xproxy-user-id"), h.get("xproxy-account-name")) for h in sent] == [
            ("u1", "acme"),
            ("u1", "acme"),
            ("u2", "globex"),
            ("u2", "globex"),
        ]
    finally:
        pool.shutdown()
        payi_web.uninstrument()
