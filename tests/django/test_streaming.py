"""Streamed responses: the content runs after the view returned, in the request's and the view's scope."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.test import Client

from payi_web import get_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

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

    from payi_web.context import Frame, root
    from payi_web.django._streaming import bind_response

    path = tmp_path / "f.txt"
    path.write_bytes(b"file body")
    with path.open("rb") as handle:
        response = FileResponse(handle)
        assert bind_response(response, Frame.child(root(), {})) is response
        assert response.file_to_stream is handle  # sendfile still possible
