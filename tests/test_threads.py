"""Carrying the context into threads: bind_context() and the opt-in ThreadPoolExecutor patch."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import payi_web
from payi_web import get_context, track_context


def user() -> str | None:
    return get_context().user_id


def test_plain_threads_do_not_inherit_scopes_but_do_see_defaults() -> None:
    payi_web.configure(defaults={"account_name": "acme"})
    seen: list[tuple[str | None, str | None]] = []
    with track_context(user_id="u1"):
        thread = threading.Thread(target=lambda: seen.append((user(), get_context().account_name)))
        thread.start()
        thread.join()
    assert seen == [(None, "acme")]


def test_bind_context_carries_the_scope_and_cleans_up() -> None:
    with track_context(user_id="u1"):
        bound = payi_web.bind_context(user)
    assert user() is None
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: bound(), range(20))) == ["u1"] * 20
        # The worker thread is left as it was found.
        assert pool.submit(user).result() is None
    assert bound.__name__ == "user"


def test_bind_context_keeps_what_functools_wraps_keeps() -> None:
    def report(kind: str, /) -> str:
        """Which user asked."""
        return f"{kind}:{user()}"

    report.owner = "billing"  # type: ignore[attr-defined]
    with track_context(user_id="u2"):
        bound = payi_web.bind_context(report)
        bound_partial = payi_web.bind_context(functools.partial(report, "partial"))
    reference = functools.wraps(report)(lambda: None)
    for attr in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__", "owner"):
        assert getattr(bound, attr) == getattr(reference, attr), attr
    assert bound.__wrapped__ is report  # type: ignore[attr-defined]
    assert inspect.signature(bound) == inspect.signature(report)
    with ThreadPoolExecutor(2) as pool:
        assert pool.submit(bound, "fn").result() == "fn:u2"
        assert pool.submit(bound_partial).result() == "partial:u2"


def test_patch_thread_pool_is_opt_in_idempotent_and_undoable() -> None:
    with ThreadPoolExecutor(2) as pool, track_context(user_id="u1"):
        assert pool.submit(user).result() is None
        payi_web.patch_thread_pool()
        payi_web.patch_thread_pool()
        try:
            assert pool.submit(user).result() == "u1"
            assert list(pool.map(lambda _: user(), range(3))) == ["u1"] * 3
        finally:
            payi_web.unpatch_thread_pool()
        assert pool.submit(user).result() is None


async def test_patch_covers_asyncio_run_in_executor() -> None:
    payi_web.patch_thread_pool()
    try:
        async with track_context(user_id="async-user"):
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, user) == "async-user"
            # asyncio.to_thread copies the whole context by itself.
            assert await asyncio.to_thread(user) == "async-user"
    finally:
        payi_web.unpatch_thread_pool()
