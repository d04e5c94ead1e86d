"""The public extension interface (`payi_web.integration`), through what an integration would do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import payi_web
from payi_web import get_context, track, track_context
from payi_web.integration import (
    Deferred,
    DidNotEnable,
    Integration,
    abind_iterator,
    bind_iterator,
    bind_result_type,
    check_fields,
    defaults_frame,
    enter_frame,
    exit_frame,
    is_bound,
    resolve_deferred,
    run_in_frame,
    scope_frame,
    unbind_result_type,
    use_frame,
)


def user() -> str | None:
    return get_context().user_id


def test_a_scope_frame_is_validated_derived_from_the_current_scope_and_current_only_when_entered() -> None:
    with pytest.raises(TypeError, match=r"task: unknown field 'usre_id' .*did you mean 'user_id'"):
        scope_frame({"usre_id": "42"}, where="task")
    with pytest.raises(ValueError, match="limit_ids"):
        check_fields({"limit_ids": ["a,b"]})
    with track_context(account_name="acme"):
        frame = scope_frame({"user_id": "42", "use_case_name": "job"})
    assert user() is None
    with use_frame(frame):
        assert (user(), get_context().account_name, get_context().use_case_name) == ("42", "acme", "job")
    assert user() is None
    assert run_in_frame(frame, user) == "42"
    token = enter_frame(frame)
    assert user() == "42"
    exit_frame(token)
    assert user() is None


def test_deferred_fields_are_resolved_on_first_use_at_most_once() -> None:
    calls: list[int] = []
    frame = scope_frame({"user_id": Deferred(lambda: calls.append(1) or "lazy", name="task user")})
    assert calls == []
    assert run_in_frame(frame, user) == "lazy" and run_in_frame(frame, user) == "lazy"
    resolve_deferred(frame)
    assert calls == [1]


def test_a_defaults_frame_is_a_root_of_its_own() -> None:
    payi_web.configure(defaults={"account_name": "process"})
    try:
        frame = scope_frame({"user_id": "7"}, defaults_frame({"limit_ids": ["app-cap"]}))
        context = run_in_frame(frame, get_context)
        assert (context.account_name, context.limit_ids, context.user_id) == (None, ("app-cap",), "7")
    finally:
        payi_web.configure()


async def test_use_frame_in_async_code_and_across_tasks() -> None:
    frame = scope_frame({"user_id": "async"})
    async with use_frame(frame):
        await asyncio.sleep(0)
        assert await asyncio.create_task(asyncio.to_thread(payi_web.bind_context(user))) == "async"
    assert user() is None


def test_bind_iterator_runs_each_step_in_its_frame_forwarding_sends_throws_and_the_return_value() -> None:
    def body() -> Any:
        received = yield user()
        try:
            yield f"{received}:{user()}"
        except KeyError:
            yield "caught"
        return "done"

    stream = bind_iterator(body(), scope_frame({"user_id": "u1"}))
    assert is_bound(stream) and not is_bound(body())
    assert next(stream) == "u1"
    assert user() is None  # between steps, the consumer's context
    assert stream.send("hi") == "hi:u1"
    assert stream.throw(KeyError()) == "caught"
    with pytest.raises(StopIteration) as stop:
        next(stream)
    assert stop.value.value == "done"


def test_a_bound_iterable_closed_early_closes_its_body_in_the_frame_the_body_left_current() -> None:
    seen: list[Any] = []

    def body() -> Iterator[str]:
        with track_context(use_case_name="inner"):
            try:
                yield "one"
                yield "two"
            finally:
                seen.append((user(), get_context().use_case_name))

    stream = bind_iterator(body(), scope_frame({"user_id": "u2"}))
    assert next(stream) == "one"
    stream.close()
    assert seen == [("u2", "inner")]
    items = bind_iterator([1, 2], scope_frame({"user_id": "u3"}))  # any iterable
    assert list(items) == [1, 2]


async def test_abind_iterator_runs_each_step_in_its_frame() -> None:
    closed: list[str | None] = []

    async def body() -> AsyncIterator[str | None]:
        try:
            yield user()
            await asyncio.sleep(0)
            yield user()
        finally:
            closed.append(user())

    stream = abind_iterator(body(), scope_frame({"user_id": "a1"}))
    assert is_bound(stream)
    assert [await anext(stream), user(), await anext(stream)] == ["a1", None, "a1"]
    await stream.aclose()
    assert closed == ["a1"]


def test_a_result_type_bound_by_an_integration_keeps_the_tracked_functions_scope() -> None:
    class Later:
        def __init__(self) -> None:
            self.frame: Any = None

        def run(self) -> str | None:
            return run_in_frame(self.frame, user)

    def adapter(result: Later, frame: Any) -> Later:
        result.frame = frame
        return result

    @track(user_id="tracked")
    def view() -> Later:
        return Later()

    bind_result_type(Later, adapter)
    try:
        assert view().run() == "tracked"
    finally:
        unbind_result_type(Later, adapter)
    assert view().frame is None


class _Counting(Integration):
    identifier = "test-counting"
    library = "pytest"
    setups = 0

    @classmethod
    def setup_once(cls) -> None:
        cls.setups += 1

    @classmethod
    def teardown_once(cls) -> None:
        cls.setups -= 1


def test_an_integration_is_set_up_once_from_many_threads_and_torn_down() -> None:
    threads = [threading.Thread(target=_Counting.setup) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert _Counting.setups == 1 and _Counting.is_set_up()
    finally:
        _Counting.teardown()
    assert _Counting.setups == 0 and not _Counting.is_set_up()
    _Counting.teardown()  # harmless
    assert _Counting.setups == 0


def test_an_integration_whose_library_is_missing_or_too_old_does_not_enable() -> None:
    class Missing(Integration):
        identifier = "test-missing"
        library = "no_such_library_here"

    class TooNew(Integration):
        identifier = "test-too-old"
        library = "pytest"
        min_version = (999,)

    with pytest.raises(DidNotEnable, match="no_such_library_here"):
        Missing.setup()
    with pytest.raises(DidNotEnable, match=r"pytest >= 999, found \d+"):
        TooNew.setup()
    assert not Missing.is_set_up() and not TooNew.is_set_up()


def test_the_framework_layers_register_as_integrations() -> None:
    from payi_web.django.integration import DjangoIntegration
    from payi_web.flask import FlaskIntegration
    from payi_web.integration import enabled_integrations

    DjangoIntegration.setup()
    FlaskIntegration.setup()
    enabled = enabled_integrations()
    assert enabled["django"] is DjangoIntegration and enabled["flask"] is FlaskIntegration
