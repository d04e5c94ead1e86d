"""An `async def` resolver needed in a view's thread pool runs on the request's own event loop.

The project's async ACCOUNT_NAME resolver reads the account with the async ORM, so it needs
Django's thread for the request's sync code: these tests also prove that no way of reaching the
pool deadlocks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from payi_web.django import _home_loop
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .project import accounts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def async_account_resolver(settings: Any) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.aaccount_name"}
    accounts.async_threads.clear()


async def logged_in(make_user: Any, name: str, account: str) -> tuple[Any, AsyncClient]:
    user = await sync_to_async(make_user)(name, account=account)
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return user, client


async def test_a_pool_thread_of_an_async_view_resolves_on_the_request_loop(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice, client = await logged_in(make_user, "alice", "acme")
    response = await client.get("/pooled/")
    assert response.status_code == 200
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    # Once, on this test's event loop (the one serving the request), not on a loop of its own.
    assert accounts.async_threads == [threading.current_thread().name]


async def test_many_users_at_once_through_the_pool(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    users = [await logged_in(make_user, f"user{n}", f"acct{n % 3}") for n in range(6)]
    responses = await asyncio.gather(*(client.get("/pooled/") for _, client in users for _ in range(4)))
    assert all(response.status_code == 200 for response in responses)
    accounts_of = {str(user.pk): f"acct{n % 3}" for n, (user, _) in enumerate(users)}
    assert len(payi_calls) == 24
    assert all(call.context.account_name == accounts_of[call.context.user_id] for call in payi_calls)
    assert len(accounts.async_threads) == 24  # once per request


async def test_a_sync_view_waiting_on_its_pool_resolves_without_deadlock(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The request's sync thread waits for the pool: the loop would wait for that thread.
    monkeypatch.setattr(_home_loop, "WAIT", 5.0)
    _, client = await logged_in(make_user, "alice", "acme")
    response = await client.get("/pooled-sync/")
    assert response.status_code == 200
    [call] = payi_calls
    assert call.context.account_name == "acme"
    assert len(accounts.async_threads) == 1  # never started on the loop, then again elsewhere
    assert accounts.async_threads[0] != threading.current_thread().name


async def test_a_blocked_loop_falls_back_after_a_bounded_wait(
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_home_loop, "WAIT", 0.2)
    _, client = await logged_in(make_user, "alice", "acme")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        response = await client.get("/pooled-blocking/")
        await asyncio.sleep(0.05)  # the loop, free again, skips the resolution it was asked for
    assert response.status_code == 200
    [call] = payi_calls
    assert call.context.account_name == "acme"
    assert len(accounts.async_threads) == 1
    assert accounts.async_threads[0] != threading.current_thread().name
    assert "did not run an async resolver" in caplog.text
