"""`inject()` / `continue_context()`: the context travels to work that runs elsewhere, whole."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import payi_web
from payi_web import continue_context, get_context, inject, payi_headers, track, track_context
from payi_web.core.log import forget
from payi_web.integration import Deferred, scope_frame, use_frame

FIELDS: dict[str, Any] = {
    "use_case_name": "summary",
    "use_case_version": 3,
    "use_case_step": "outline",
    "use_case_properties": {"tier": "gold"},
    "limit_ids": ["cap"],
    "account_name": "acme",
    "request_properties": {"route": "/chat", "note": None},
    "price_as_resource": "gpt-4o",
    "log_prompt_and_response": False,
}


def _elsewhere(fn: Any) -> Any:
    """`fn()` in a new thread, which inherits no context: as a task worker runs a task."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]


def test_every_field_travels_and_the_work_joins_the_use_case_instance() -> None:
    loads: list[str] = []
    frame = scope_frame({**FIELDS, "user_id": Deferred(lambda: loads.append("u") or "alice", name="user")})
    with use_frame(frame):
        carrier = inject({})
        sent = payi_headers()
        there = get_context()
    assert loads == ["u"]  # resolved at inject time, while the request is alive
    json.loads(carrier["payi-context"])  # one JSON value, in a str mapping

    def work() -> tuple[Any, dict[str, str]]:
        with continue_context(carrier):
            return get_context(), payi_headers()

    context, headers = _elsewhere(work)
    assert context == there and headers == sent
    assert context.use_case_id == there.use_case_id and context.user_id == "alice"


def test_a_track_inside_the_work_follows_the_usual_rules() -> None:
    @track(use_case_name="other")
    def new_use_case() -> Any:
        return get_context()

    @track(use_case_name="summary", use_case_step="final")
    def same_use_case() -> Any:
        return get_context()

    with track_context(use_case_name="summary", user_id="bob"):
        carrier = inject({})
        instance = get_context().use_case_id

    def work() -> tuple[Any, Any]:
        with continue_context(carrier):
            return new_use_case(), same_use_case()

    other, same = _elsewhere(work)
    assert other.use_case_id not in (None, instance) and other.user_id == "bob"
    assert same.use_case_id == instance and same.use_case_step == "final"


async def test_async_with_and_as_a_decorator() -> None:
    with track_context(user_id="carol", use_case_name="chat"):
        carrier = inject({})

    @continue_context(carrier)
    def decorated() -> str | None:
        return get_context().user_id

    async def task() -> str | None:
        async with continue_context(carrier):
            await asyncio.sleep(0)
            return get_context().user_id

    assert decorated() == "carol" and await asyncio.create_task(task()) == "carol"
    assert get_context().user_id is None


@pytest.mark.parametrize(
    "carrier",
    [
        {"payi-context": "not json"},
        {"payi-context": '{"v": 99, "fields": {"user_id": "x"}}'},
        {"payi-context": '{"v": 1, "fields": {"user_id": 5}}'},
        {"payi-context": '{"v": 1, "fields": {"usre_id": "x"}}'},
        {"payi-context": "[" * 100_000},
    ],
    ids=["garbage", "another-version", "wrong-type", "unknown-field", "deep"],
)
def test_a_carrier_this_version_cannot_read_continues_nothing_and_is_logged_once(
    carrier: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    forget("propagation-carrier")
    with caplog.at_level(logging.WARNING, logger="payi_web"), track_context(user_id="here"):
        for _ in range(3):
            with continue_context(carrier):
                assert get_context().user_id == "here"  # the scope around it, unchanged
    assert len([r for r in caplog.records if "carrier could not be read" in r.getMessage()]) == 1


def test_no_carrier_continues_nothing_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="payi_web"), continue_context({}):
        assert get_context() == payi_web.TrackingContext()
    assert not caplog.records


def test_many_users_at_once_each_continue_their_own() -> None:
    def publish(n: int) -> dict[str, str]:
        with track_context(user_id=f"user-{n}", use_case_name="job", request_properties={"n": str(n)}):
            return inject({})

    def run(carrier: dict[str, str]) -> tuple[str | None, dict[str, str | None] | None]:
        with continue_context(carrier):
            context = get_context()
            return context.user_id, context.request_properties

    with ThreadPoolExecutor(8) as pool:
        carriers = list(pool.map(publish, range(64)))
        results = list(pool.map(run, reversed(carriers)))
    assert results == [(f"user-{n}", {"n": str(n)}) for n in reversed(range(64))]
