"""@track and track_context(): every kind of callable, metadata, validation, failure and nesting."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import random
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asgiref.sync
import pydantic
import pytest

import payi_web
from payi_web import get_context, track, track_context


def user() -> str | None:
    return get_context().user_id


# --- every kind of callable -------------------------------------------------------------------


def test_sync_function_scope_is_active_only_during_the_call() -> None:
    @track(user_id="u1", use_case_name="summary")
    def view(x: int) -> tuple[int, str | None, str | None]:
        ctx = get_context()
        return x, ctx.user_id, ctx.use_case_name

    assert view(3) == (3, "u1", "summary")
    assert get_context() == payi_web.TrackingContext()


async def test_async_function_scope() -> None:
    @track(user_id="u1")
    async def view() -> str | None:
        await asyncio.sleep(0)
        return user()

    assert await view() == "u1"
    assert user() is None


def test_generator_scope_is_active_at_every_step_and_not_between() -> None:
    @track(user_id="gen-user")
    def numbers() -> Iterator[str | None]:
        yield user()
        yield user()

    with track_context(user_id="creator"):
        gen = numbers()
    # Consumed outside the creating scope (as a streamed response is): the scope still applies.
    with track_context(user_id="consumer"):
        first = next(gen)
        assert user() == "consumer"
        second = next(gen)
    assert (first, second) == ("gen-user", "gen-user")


def test_generator_inherits_from_the_scope_that_created_it() -> None:
    @track(use_case_name="stream")
    def chunks() -> Iterator[tuple[str | None, str | None]]:
        yield user(), get_context().use_case_name

    with track_context(user_id="alice"):
        gen = chunks()
    assert list(gen) == [("alice", "stream")]


def test_scope_entered_inside_a_generator_spans_its_yields() -> None:
    @track(user_id="outer")
    def body() -> Iterator[str | None]:
        with track_context(user_id="inner"):
            yield user()
            yield user()
        yield user()

    assert list(body()) == ["inner", "inner", "outer"]


def test_generator_close_throw_send_and_return_value() -> None:
    seen: list[Any] = []

    @track(user_id="g")
    def echo() -> Iterator[int]:
        try:
            received = yield 1
            seen.append((received, user()))
            try:
                yield 2
            except KeyError:
                seen.append(("caught", user()))
                yield 3
        finally:
            seen.append(("closed", user()))

    gen = echo()
    assert next(gen) == 1
    assert gen.send("hello") == 2
    assert gen.throw(KeyError("k")) == 3
    gen.close()
    assert seen == [("hello", "g"), ("caught", "g"), ("closed", "g")]
    assert user() is None

    @track(user_id="r")
    def returns() -> Iterator[int]:
        yield 1
        return 42

    def delegate() -> Iterator[int]:
        result = yield from returns()
        assert result == 42

    assert list(delegate()) == [1]


def test_generator_resumed_in_another_thread_keeps_its_scopes() -> None:
    @track(user_id="outer")
    def body() -> Iterator[str | None]:
        with track_context(user_id="inner"):
            yield user()
            yield user()
        yield user()

    gen = body()
    results = [next(gen)]

    def resume() -> None:
        results.extend(gen)

    worker = threading.Thread(target=resume)
    worker.start()
    worker.join()
    assert results == ["inner", "inner", "outer"]


async def test_async_generator_scope_at_every_step() -> None:
    @track(user_id="agen")
    async def tokens() -> AsyncIterator[str | None]:
        with track_context(account_name="acct"):
            yield user()
            await asyncio.sleep(0)
            yield get_context().account_name
        yield get_context().account_name

    with track_context(user_id="consumer"):
        got = [item async for item in tokens()]
        assert user() == "consumer"
    assert got == ["agen", "acct", None]


async def test_async_generator_closed_early_runs_cleanup_in_scope() -> None:
    seen: list[str | None] = []

    @track(user_id="agen")
    async def tokens() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            seen.append(user())

    agen = tokens()
    assert await agen.__anext__() == 1
    await agen.aclose()  # type: ignore[attr-defined]
    assert seen == ["agen"]
    assert user() is None


def test_methods_classmethods_and_staticmethods() -> None:
    class Service:
        prefix = "svc"

        @track(user_id="m")
        def method(self, x: int) -> tuple[str, int, str | None]:
            return self.prefix, x, user()

        @track(user_id="c")
        @classmethod
        def klass(cls) -> tuple[str, str | None]:
            return cls.prefix, user()

        @track(user_id="s")
        @staticmethod
        def static() -> str | None:
            return user()

    assert Service().method(2) == ("svc", 2, "m")
    assert Service.klass() == ("svc", "c")
    assert Service.static() == "s"


def test_bare_decorator_and_track_context_as_decorator() -> None:
    @track
    def plain() -> str | None:
        return user()

    @track_context(user_id="deco")
    def decorated() -> str | None:
        return user()

    assert plain() is None
    assert decorated() == "deco"


async def test_async_with_track_context() -> None:
    async with track_context(user_id="a"):
        await asyncio.sleep(0)
        assert user() == "a"
    assert user() is None


def test_one_track_context_object_reused_and_nested() -> None:
    scope = track_context(use_case_name="flow")
    with scope:
        first = get_context().use_case_id
        with scope:
            assert get_context().use_case_id == first  # same name nested keeps the instance
        assert get_context().use_case_id == first
    with scope:
        assert get_context().use_case_id != first  # a new entry is a new instance
    assert get_context().use_case_name is None


# --- what the wrapper keeps -------------------------------------------------------------------


def test_wrapper_keeps_name_doc_wrapped_and_signature() -> None:
    def view(request: object, pk: int = 1) -> None:
        """Summarise a document."""

    wrapped = track(use_case_name="x")(view)
    assert wrapped.__name__ == "view"
    assert wrapped.__doc__ == "Summarise a document."
    assert wrapped.__wrapped__ is view  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(view)


def test_wrapper_answers_iscoroutinefunction_like_the_original() -> None:
    async def async_view() -> None:
        pass

    def sync_view() -> None:
        pass

    marked = asgiref.sync.markcoroutinefunction(lambda: None)

    assert inspect.iscoroutinefunction(track(user_id="a")(async_view))
    assert asgiref.sync.iscoroutinefunction(track(user_id="a")(async_view))
    assert not inspect.iscoroutinefunction(track(user_id="a")(sync_view))
    assert not asgiref.sync.iscoroutinefunction(track(user_id="a")(sync_view))
    assert asgiref.sync.iscoroutinefunction(marked)
    # A generator function's wrapper is a plain function (it derives the scope at creation):
    # it must not pass for a coroutine function.
    assert not asgiref.sync.iscoroutinefunction(track(user_id="a")(_agen))
    assert not asgiref.sync.iscoroutinefunction(track(user_id="a")(_gen))


async def _agen() -> AsyncIterator[int]:
    yield 1


def _gen() -> Iterator[int]:
    yield 1


# --- bad arguments fail early and leave no trace ------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error", "names"),
    [
        ({"limit_ids": "a,b"}, TypeError, "limit_ids"),
        ({"limit_ids": ["a", 1]}, TypeError, "limit_ids"),
        ({"limit_ids": ["a,b"]}, ValueError, "limit_ids"),
        ({"use_case_version": "1"}, TypeError, "use_case_version"),
        ({"use_case_version": True}, TypeError, "use_case_version"),
        ({"use_case_version": -1}, ValueError, "use_case_version"),
        ({"request_properties": {"k": 1}}, TypeError, "request_properties['k']"),
        ({"use_case_properties": ["k"]}, TypeError, "use_case_properties"),
        ({"user_id": 42}, TypeError, "user_id"),
        ({"proxy": "yes"}, TypeError, "proxy"),
        ({"usre_id": "x"}, TypeError, "'usre_id' (did you mean 'user_id'?)"),
    ],
)
def test_bad_arguments_raise_at_decoration_and_entry(fields: dict[str, Any], error: type, names: str) -> None:
    with pytest.raises(error, match=re.escape(names)):
        track(**fields)
    with pytest.raises(error, match=re.escape(names)):
        track_context(**fields)
    with pytest.raises(error, match=re.escape(names)):
        payi_web.configure(defaults=fields)


def test_decorating_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        track(user_id="a")(42)


def test_failed_entry_leaves_the_context_exactly_as_before() -> None:
    with track_context(user_id="kept", limit_ids=["l1"]):
        before = get_context()
        with pytest.raises(TypeError), track_context(user_id="ok", limit_ids="bad"):  # type: ignore[arg-type]
            pass
        assert get_context() == before
    assert get_context() == payi_web.TrackingContext()


def test_exception_in_the_body_restores_the_parent() -> None:
    @track(user_id="inner")
    def boom() -> None:
        raise RuntimeError("x")

    with track_context(user_id="outer"):
        with pytest.raises(RuntimeError):
            boom()
        assert user() == "outer"
        with pytest.raises(RuntimeError), track_context(user_id="inner"):
            raise RuntimeError("y")
        assert user() == "outer"


def test_exit_out_of_order_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from payi_web.core.log import forget

    forget("exit-out-of-order")
    scope = track_context(user_id="a")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        scope.__exit__(None, None, None)
    assert "out of order" in caplog.text
    assert user() is None


def test_exit_discards_a_scope_left_open_inside() -> None:
    left_open = track_context(user_id="inner")
    with track_context(user_id="outer"):
        left_open.__enter__()
        assert user() == "inner"
    assert get_context() == payi_web.TrackingContext()


# --- get_context() and configure() -------------------------------------------------------------


def test_get_context_is_immutable_and_detached() -> None:
    with track_context(request_properties={"k": "v"}, limit_ids=["a"]):
        ctx = get_context()
        with pytest.raises(pydantic.ValidationError):
            ctx.user_id = "x"  # type: ignore[misc]
        assert ctx.request_properties is not None
        ctx.request_properties["k"] = "changed"
        assert get_context().request_properties == {"k": "v"}
        assert get_context().limit_ids == ("a",)


def test_a_scope_keeps_the_arguments_it_was_given_whatever_the_caller_changes_later() -> None:
    properties: dict[str, str | None] = {"k": "v"}
    ids = ["a"]
    scope = track_context(request_properties=properties, use_case_name="u", use_case_properties=properties)
    decorated = track(request_properties=properties, limit_ids=ids)(get_context)
    properties["k"] = "changed"
    properties["new"] = "x"
    ids.append("b")
    with scope:  # fields are derived at first use, after the caller's changes
        ctx = get_context()
    assert (ctx.request_properties, ctx.use_case_properties) == ({"k": "v"}, {"k": "v"})
    assert (decorated().request_properties, decorated().limit_ids) == ({"k": "v"}, ("a",))


def test_use_case_id_is_stable_within_a_scope_and_new_per_entry() -> None:
    @track(use_case_name="chat")
    def ids() -> tuple[str | None, str]:
        return get_context().use_case_id, payi_web.payi_headers()["xProxy-UseCase-ID"]

    first, header = ids()
    assert first == header
    assert ids()[0] != first


def test_configure_replaces_the_previous_defaults() -> None:
    payi_web.configure(defaults={"user_id": "a", "limit_ids": ["cap"]})
    assert get_context().user_id == "a"
    payi_web.configure(defaults={"account_name": "b"})
    assert get_context().user_id is None
    assert get_context().account_name == "b"
    assert get_context().limit_ids is None
    with pytest.raises(TypeError, match="defaults must be a dict"):
        payi_web.configure(defaults=["user_id"])  # type: ignore[arg-type]


def test_defaults_apply_in_threads_started_before_configure() -> None:
    configured = threading.Event()
    seen: list[str | None] = []

    def worker() -> None:
        configured.wait(5)
        seen.append(get_context().account_name)

    thread = threading.Thread(target=worker)
    thread.start()
    payi_web.configure(defaults={"account_name": "acme"})
    configured.set()
    thread.join()
    assert seen == ["acme"]


def test_decorators_are_reentrant_under_functools_partial() -> None:
    @track(user_id="p")
    def add(a: int, b: int) -> tuple[int, str | None]:
        return a + b, user()

    assert functools.partial(add, 1)(2) == (3, "p")


def test_use_case_ids_are_unique_whatever_the_app_does_with_random_or_fork() -> None:
    def new_id() -> str:
        with track_context(use_case_name="ids"):
            value = get_context().use_case_id
            assert value is not None
            parsed = uuid.UUID(value)  # a canonical random UUID, as uuid4() would give
            assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
            return value

    assert len({new_id() for _ in range(2000)}) == 2000
    random.seed(0)
    first = new_id()
    random.seed(0)  # an app seeding the global generator does not repeat our ids
    assert new_id() != first
    # A forked worker (gunicorn's) must not draw the same ids as its parent or its siblings.
    read, write = os.pipe()
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, new_id().encode() + b"\n")
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = pipe.read().split()
    assert len(set([*child_ids, new_id()])) == 3
