"""Many users at once, in threads and in asyncio tasks: nobody ever sees another's context."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import payi_web
from payi_web import payi_headers, track, track_context

USERS = 64


def _expected(i: int) -> dict[str, str]:
    return {"user": f"user-{i}", "account": f"acct-{i % 5}", "request": f"req-{i}"}


def _observed(headers: dict[str, str]) -> dict[str, str]:
    import base64
    import json

    props = json.loads(base64.b64decode(headers["xProxy-Request-Properties"]))
    return {
        "user": headers["xProxy-User-ID"],
        "account": headers["xProxy-Account-Name"],
        "request": props["request_id"],
    }


def test_threads_with_different_users_never_mix() -> None:
    payi_web.configure(defaults={"use_case_name": "app", "limit_ids": ["global"]})
    barrier = threading.Barrier(USERS)
    mismatches: list[tuple[int, dict[str, str]]] = []

    @track(use_case_name="summary")
    def view(i: int) -> None:
        for _ in range(20):
            time.sleep(0)  # let other threads run between reads
            seen = _observed(payi_headers())
            if seen != _expected(i):
                mismatches.append((i, seen))

    def request(i: int) -> None:
        barrier.wait()
        exp = _expected(i)
        with track_context(
            user_id=exp["user"],
            account_name=exp["account"],
            request_properties={"request_id": exp["request"]},
        ):
            view(i)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


async def test_asyncio_tasks_with_different_users_never_mix() -> None:
    mismatches: list[tuple[int, dict[str, str]]] = []

    @track(use_case_name="chat")
    async def view(i: int) -> None:
        for _ in range(10):
            await asyncio.sleep(random.random() / 1000)
            seen = _observed(payi_headers())
            if seen != _expected(i):
                mismatches.append((i, seen))

    async def request(i: int) -> None:
        exp = _expected(i)
        async with track_context(
            user_id=exp["user"],
            account_name=exp["account"],
            request_properties={"request_id": exp["request"]},
        ):
            await view(i)

    await asyncio.gather(*(request(i) for i in range(USERS * 4)))
    assert mismatches == []


async def test_async_generators_interleaved_across_users() -> None:
    @track(use_case_name="stream")
    async def stream(i: int) -> AsyncIterator[dict[str, str]]:
        for _ in range(5):
            await asyncio.sleep(random.random() / 1000)
            yield _observed(payi_headers())

    async def request(i: int) -> list[dict[str, str]]:
        exp = _expected(i)
        with track_context(
            user_id=exp["user"],
            account_name=exp["account"],
            request_properties={"request_id": exp["request"]},
        ):
            gen = stream(i)
        # Consumed after the request scope has ended, as a streamed response body is.
        return [chunk async for chunk in gen]

    results = await asyncio.gather(*(request(i) for i in range(USERS)))
    for i, chunks in enumerate(results):
        assert chunks == [_expected(i)] * 5


def test_sync_generators_consumed_by_a_shared_thread_pool() -> None:
    @track(use_case_name="stream")
    def stream() -> Iterator[dict[str, str]]:
        for _ in range(5):
            yield _observed(payi_headers())

    gens = []
    for i in range(USERS):
        exp = _expected(i)
        with track_context(
            user_id=exp["user"],
            account_name=exp["account"],
            request_properties={"request_id": exp["request"]},
        ):
            gens.append(stream())
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(list, gens))
    for i, chunks in enumerate(results):
        assert chunks == [_expected(i)] * 5


@pytest.mark.parametrize("patched", [False, True])
def test_thread_pool_workers_inside_views_under_load(patched: bool) -> None:
    """A view that fans out to a thread pool keeps its user in every worker."""
    if patched:
        payi_web.patch_thread_pool()
    try:
        pool = ThreadPoolExecutor(4)

        def work(_: int) -> dict[str, str]:
            return _observed(payi_headers())

        def request(i: int) -> list[dict[str, str]]:
            exp = _expected(i)
            with track_context(
                user_id=exp["user"],
                account_name=exp["account"],
                request_properties={"request_id": exp["request"]},
            ):
                fn = work if patched else payi_web.bind_context(work)
                return [pool.submit(fn, n).result() for n in range(3)]

        with ThreadPoolExecutor(16) as outer:
            results = list(outer.map(request, range(USERS)))
        pool.shutdown()
        for i, seen in enumerate(results):
            assert seen == [_expected(i)] * 3
    finally:
        payi_web.unpatch_thread_pool()
