"""The request scope under ASGI (Django's AsyncClient): async views, streams, sync code on the loop."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import django
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from payi_web.django import _request
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .conftest import account_of, check_drafts_body, check_one_call_per_user
from .project import accounts, views

# Async views reach the database from other threads: their data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def alice(make_user: Any) -> Any:
    return await sync_to_async(make_user)("alice", account="acme")


@pytest.fixture
async def alice_client(alice: Any) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)
    return client


async def _logged_in(make_user: Any, count: int) -> list[tuple[Any, AsyncClient]]:
    clients = []
    for n in range(count):
        user = await sync_to_async(make_user)(f"user{n}", account=account_of(n))
        client = AsyncClient()
        await sync_to_async(client.force_login)(user)
        clients.append((user, client))
    return clients


class Barrier:
    """`asyncio.Barrier` (Python >= 3.11) for one round: `wait()` returns once all parties called it."""

    def __init__(self, parties: int) -> None:
        self.waiting = parties
        self.all_in = asyncio.Event()

    async def wait(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_in.set()
        await self.all_in.wait()


async def body_of(response: Any) -> bytes:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "StreamingHttpResponse must consume synchronous iterators")
        return b"".join([part async for part in response])


async def test_an_async_view_with_async_openai(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    response = await alice_client.get("/achat/", headers={"X-Request-Id": "a-1"})
    assert response.status_code == 200
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.use_case_name == "achat"
    assert call.context.request_properties == {"request_id": "a-1"}
    assert provider.received[0].headers["xproxy-user-id"] == str(alice.pk)


@pytest.fixture
def worker_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resolvers run in the worker thread (for sync code on an event loop's thread)."""
    runs: list[str] = []
    original = _request._in_worker

    def counted(fn: Any) -> Any:
        runs.append(threading.current_thread().name)
        return original(fn)

    monkeypatch.setattr(_request, "_in_worker", counted)
    return runs


async def test_a_sync_client_called_on_the_event_loop_resolves_off_the_loop(
    alice: Any,
    alice_client: AsyncClient,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    worker_runs: list[str],
) -> None:
    response = await alice_client.get("/blocking/")
    assert response.status_code == 200
    assert response.json()["user_id"] == str(alice.pk)
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert len(worker_runs) == 2 and all(name.startswith("payi-web-resolve") for name in worker_runs)


async def test_an_async_stream(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    response = await alice_client.get("/astream/", headers={"X-Request-Id": "a-2"})
    assert not payi_calls
    assert b"offline demo model" in await body_of(response)
    [call] = payi_calls
    assert call.streamed
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.use_case_name == "astream"
    assert call.context.request_properties == {"request_id": "a-2"}


async def test_a_tracked_async_generator_as_the_body_under_asgi(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    response = await alice_client.get("/atracked-body/", headers={"X-Request-Id": "a-9"})
    body = await body_of(response.streaming_content)
    assert body.startswith(b"answer:") and b"offline demo model" in body
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert (call.context.use_case_name, call.context.use_case_step) == ("atracked-body", "answer")
    assert call.context.request_properties == {"request_id": "a-9"}


async def test_a_sync_stream_served_under_asgi(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    response = await alice_client.get("/stream/", headers={"X-Request-Id": "a-3"})
    assert b"offline demo model" in await body_of(response)
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.use_case_name == "stream"
    assert call.context.request_properties == {"request_id": "a-3"}


async def test_a_sync_stream_iterated_on_the_event_loop(
    alice: Any,
    alice_client: AsyncClient,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    worker_runs: list[str],
) -> None:
    # The sync generator (a sync OpenAI stream) runs on the loop's thread: no SynchronousOnlyOperation.
    response = await alice_client.get("/untracked-stream/")
    assert b"offline demo model" in b"".join(response.streaming_content)
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert len(worker_runs) == 2


async def test_a_request_without_genai_calls_resolves_nothing(
    alice_client: AsyncClient, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    loads: list[str] = []
    monkeypatch.setattr(SessionStore, "load", lambda self: loads.append("load") or {})
    monkeypatch.setattr(SessionStore, "aload", lambda self: loads.append("aload") or {}, raising=False)
    before = dict(accounts.calls)
    assert (await alice_client.get("/plain/")).status_code == 200
    assert loads == [] and accounts.calls == before


async def test_an_async_account_resolver(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.aaccount_name"}
    before = accounts.calls["aaccount_name"]
    assert (await alice_client.get("/achat/")).status_code == 200
    assert (await alice_client.get("/blocking/")).status_code == 200
    assert [c.context.account_name for c in payi_calls] == ["acme", "acme"]
    assert accounts.calls["aaccount_name"] == before + 2  # once per request


async def test_an_async_account_resolved_from_a_sync_thread_leaves_the_request_context_as_it_was(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    # The resolver runs through async_to_sync there, whose own bookkeeping (a Local for its
    # executor) would otherwise join the request's context and be carried, copied and re-homed
    # by every later sync/async hop of the request.
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.aaccount_name"}
    clients = await _logged_in(make_user, 4)
    responses = await asyncio.gather(*(client.get("/sync-in-async/") for _, client in clients))
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.json()["added"] for r in responses] == [[]] * 4
    accounts_of = {str(user.pk): account_of(n) for n, (user, _) in enumerate(clients)}
    assert sorted(c.context.user_id for c in payi_calls) == sorted(accounts_of)
    assert all(c.context.account_name == accounts_of[c.context.user_id] for c in payi_calls)
    assert {c.context.use_case_name for c in payi_calls} == {"sync-in-async"}


async def test_concurrent_calls_of_a_request_share_one_async_resolution(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.aaccount_name"}
    clients = await _logged_in(make_user, 6)
    before = accounts.calls["aaccount_name"]
    # Six users at once, two requests each, each request making three calls at once.
    responses = await asyncio.gather(*(client.get("/gathered/") for _, client in clients for _ in range(2)))
    assert [r.status_code for r in responses] == [200] * 12
    assert accounts.calls["aaccount_name"] == before + 12  # once per request
    accounts_of = {str(user.pk): f"acct{n % 3}" for n, (user, _) in enumerate(clients)}
    assert len(payi_calls) == 36
    assert all(call.context.account_name == accounts_of[call.context.user_id] for call in payi_calls)
    assert {call.context.use_case_name for call in payi_calls} == {"gathered"}
    sent = [(r.headers["xproxy-user-id"], r.headers["xproxy-account-name"]) for r in provider.received]
    assert all(accounts_of[user_id] == account for user_id, account in sent)


async def test_a_call_cancelled_while_resolving_leaves_the_resolution_to_the_next(
    alice: Any, alice_client: AsyncClient, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.gated_account"}
    before = accounts.calls["gated_account"]
    response = await asyncio.wait_for(alice_client.get("/cancelled/"), 10)  # no call left waiting
    assert response.status_code == 200
    assert response.json()["first_cancelled"] is True
    assert accounts.calls["gated_account"] > before
    [call] = payi_calls  # the cancelled call never went out
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "gated")
    assert provider.received[0].headers["xproxy-account-name"] == "gated"


async def test_failing_resolvers_under_asgi(
    alice: Any,
    alice_client: AsyncClient,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    settings: Any,
    forget_warnings: None,
) -> None:
    settings.PAYI = {
        **settings.PAYI,
        "USER_ID": "tests.django.project.accounts.failing_resolver",
        "ACCOUNT_NAME": lambda request: 42,  # not a str
    }
    assert (await alice_client.get("/achat/", headers={"X-Break-Context": "1"})).status_code == 200
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name, call.context.request_properties) == (
        None,
        None,
        None,
    )
    assert call.context.use_case_name == "achat"


async def test_a_user_the_view_loaded_async_is_not_loaded_again_for_a_sync_call(
    alice: Any,
    alice_client: AsyncClient,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    from django.contrib import auth

    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": None}  # the project's would load the user itself
    sync_loads: list[str] = []
    original = auth.get_user
    monkeypatch.setattr(auth, "get_user", lambda request: sync_loads.append("load") or original(request))
    response = await alice_client.get("/loaded-then-thread/")
    assert response.status_code == 200
    [call] = payi_calls
    assert call.context.user_id == str(alice.pk) == response.json()["user_id"]
    # The user the view loaded serves the sync call too: no load of payi-web's own. Before Django
    # 5.0 (no `request.auser()`) the view's own load is a sync one, in Django's thread for sync code.
    assert sync_loads == ([] if django.VERSION >= (5, 0) else ["load"])


async def test_a_scope_an_async_body_enters_around_a_yield_stays_current_after_it(
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Six users at once, each async body held mid-scope until all six are.
    clients = await _logged_in(make_user, 6)
    monkeypatch.setattr(views, "drafts_barrier", Barrier(len(clients)))

    async def read(user: Any, client: AsyncClient) -> str:
        response = await client.get("/adrafts/", headers={"X-Request-Id": f"d-{user.pk}"})
        return (await body_of(response)).decode()

    bodies = await asyncio.wait_for(asyncio.gather(*(read(user, client) for user, client in clients)), 20)
    for body in bodies:
        check_drafts_body(body)
    check_one_call_per_user(payi_calls, [u for u, _ in clients], ("adrafts", "drafting"), "d", caplog)


@pytest.mark.parametrize("path", ["/aclosed-early/", "/atracked-closed-early/"])
async def test_an_async_stream_the_client_leaves_ends_its_body_in_the_scope(
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    # Django's ASGI handler itself: four users at once disconnect after the first chunk. The
    # handler cancels the response and drops it; the event loop then closes the abandoned body,
    # whose `finally` must still run in its request's and view's scope.
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()
    clients = await _logged_in(make_user, 4)

    async def leave_early(user: Any, client: AsyncClient) -> list[bytes]:
        first_chunk = asyncio.Event()
        sent: list[bytes] = []
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await first_chunk.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                sent.append(message["body"])
                first_chunk.set()
                await asyncio.sleep(0.05)  # the disconnect arrives while this chunk is sent

        session = client.cookies["sessionid"].value
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"cookie", f"sessionid={session}".encode()),
                (b"x-request-id", f"c-{user.pk}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        await app(scope, receive, send)
        return sent

    sent = await asyncio.wait_for(asyncio.gather(*(leave_early(u, c) for u, c in clients)), 20)
    # Django < 5.0's handler does not listen for the disconnect: it sends the whole body, whose
    # `finally` then runs as the body ends (in the scope all the same).
    read = [b"first\n"] if django.VERSION >= (5, 0) else [b"first\n", b"never read\n"]
    assert sent == [read] * len(clients)
    for _ in range(200):  # the loop closes the abandoned bodies in tasks of their own
        if len(payi_calls) == len(clients):
            break
        await asyncio.sleep(0.01)
    check_one_call_per_user(payi_calls, [u for u, _ in clients], ("aclosed-early", "drafting"), "c", caplog)
