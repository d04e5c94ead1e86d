"""Streamed responses: the content runs after the view returned, in the request's and the view's scope."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import Client

from payi_web import get_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .conftest import account_of, check_drafts_body, check_one_call_per_user
from .project import views

pytestmark = pytest.mark.django_db


def test_a_sync_stream_consumed_after_the_view_returned_keeps_user_account_and_use_case(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/stream/", HTTP_X_REQUEST_ID="s-1")
    assert response.streaming and not payi_calls  # nothing has run yet
    assert get_context().user_id is None
    body = b"".join(response.streaming_content)
    assert b"offline demo model" in body
    [call] = payi_calls
    assert call.streamed and not call.failed
    assert call.context.user_id == str(alice.pk)
    assert call.context.account_name == "acme"
    assert call.context.use_case_name == "stream"
    assert call.context.request_properties == {"request_id": "s-1"}
    assert call.input_tokens and call.output_tokens
    assert provider.received[0].headers["xproxy-usecase-name"] == "stream"


def test_an_untracked_stream_keeps_the_request_scope(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/untracked-stream/", HTTP_X_REQUEST_ID="s-2")
    b"".join(response.streaming_content)
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.use_case_name is None
    assert call.context.request_properties == {"request_id": "s-2"}


@pytest.mark.parametrize(
    ("path", "use_case"),
    [("/tracked-body/", "tracked-body"), ("/untracked-view-tracked-body/", None)],
)
def test_a_tracked_generator_as_the_body_keeps_its_scope_and_the_views(
    client: Client,
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    path: str,
    use_case: str | None,
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get(path, HTTP_X_REQUEST_ID="s-4")
    chunks = list(response.streaming_content)
    step = "answer" if use_case else None  # a step belongs to a use case: none without one
    assert chunks[0] == f"{step}:".encode() and b"offline demo model" in b"".join(chunks)
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert (call.context.use_case_name, call.context.use_case_step) == (use_case, step)
    assert call.context.request_properties == {"request_id": "s-4"}
    assert get_context().use_case_step is None


def test_an_async_stream_served_under_wsgi(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/astream/", HTTP_X_REQUEST_ID="s-3")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "StreamingHttpResponse must consume asynchronous iterators")
        body = b"".join(response)
    assert b"offline demo model" in body
    [call] = payi_calls
    assert call.streamed
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.use_case_name == "astream"
    assert call.context.request_properties == {"request_id": "s-3"}


def test_a_drf_viewset_stream(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/api/chats/7/")
    b"".join(response.streaming_content)
    [call] = payi_calls
    assert call.context.user_id == str(alice.pk)
    assert (call.context.use_case_name, call.context.use_case_step) == ("drf-viewset", "stream")


def test_file_responses_are_left_alone(client: Client, tmp_path: Any) -> None:
    from django.http import FileResponse

    from payi_web.core.context import Frame, root
    from payi_web.django._streaming import bind_response

    path = tmp_path / "f.txt"
    path.write_bytes(b"file body")
    with path.open("rb") as handle:
        response = FileResponse(handle)
        assert bind_response(response, Frame(root(), {})) is response
        assert response.file_to_stream is handle  # sendfile still possible


def _logged_in(make_user: Any, count: int) -> list[tuple[Any, Client]]:
    clients = []
    for n in range(count):  # one at a time: SQLite's shared in-memory test database locks
        user = make_user(f"user{n}", account=account_of(n))
        clients.append((user, Client()))
        clients[-1][1].force_login(user)
    return clients


@pytest.mark.django_db(transaction=True)  # the threads' requests read the users
def test_a_scope_the_body_enters_around_a_yield_stays_current_after_it(
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Six users at once, each body held mid-scope until all six are: each call made after a
    # yield inside `with track_context()` keeps that scope and its own user, none another's.
    clients = _logged_in(make_user, 6)
    monkeypatch.setattr(views, "drafts_barrier", threading.Barrier(len(clients), timeout=10))

    def read(user_and_client: tuple[Any, Client]) -> bytes:
        user, client = user_and_client
        return b"".join(client.get("/drafts/", HTTP_X_REQUEST_ID=f"d-{user.pk}").streaming_content)

    with ThreadPoolExecutor(len(clients)) as pool:
        bodies = list(pool.map(read, clients))
    for body in bodies:
        check_drafts_body(body.decode())
    check_one_call_per_user(payi_calls, [u for u, _ in clients], ("drafts", "drafting"), "d", caplog)
    assert get_context().use_case_step is None


@pytest.mark.django_db(transaction=True)  # the threads' requests read the users
def test_a_stream_closed_early_ends_its_body_in_the_scope(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, caplog: pytest.LogCaptureFixture
) -> None:
    # Four users at once leave their streams after the first chunk (a client gone): each body's
    # `finally` runs in its request's and view's scope, and its call is attributed to its user.
    clients = _logged_in(make_user, 4)

    def leave_early(user_and_client: tuple[Any, Client]) -> bytes:
        user, client = user_and_client
        response = client.get("/closed-early/", HTTP_X_REQUEST_ID=f"c-{user.pk}")
        first = next(iter(response.streaming_content))
        response.close()
        return bytes(first)

    with ThreadPoolExecutor(len(clients)) as pool:
        assert list(pool.map(leave_early, clients)) == [b"first\n"] * len(clients)
    check_one_call_per_user(payi_calls, [u for u, _ in clients], ("closed-early", "drafting"), "c", caplog)
    assert get_context().use_case_name is None
