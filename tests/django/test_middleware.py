"""The request scope under WSGI (Django's test client): user, account, CONTEXT, laziness, failures."""

from __future__ import annotations

import base64
import gc
import json
import logging
from typing import Any

import pytest
from django.test import Client

from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .project import accounts, views

pytestmark = pytest.mark.django_db


def props(header: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(header))


def test_a_call_in_a_view_carries_the_requests_user_account_use_case_and_context(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/summary/", HTTP_X_REQUEST_ID="r-1")
    assert response.status_code == 200
    [call] = payi_calls
    assert call.context.user_id == str(alice.pk)
    assert call.context.account_name == "acme"
    assert call.context.use_case_name == "summary"
    assert call.context.limit_ids == ("monthly-cap",)
    assert call.context.request_properties == {"request_id": "r-1"}
    [sent] = provider.received
    assert sent.headers["xproxy-user-id"] == str(alice.pk)
    assert sent.headers["xproxy-account-name"] == "acme"
    assert props(sent.headers["xproxy-request-properties"]) == {"request_id": "r-1"}


def test_anonymous_requests_have_no_user_or_account(
    client: Client, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    assert client.get("/summary/").status_code == 200
    [call] = payi_calls
    assert call.context.user_id is None and call.context.account_name is None
    assert call.context.use_case_name == "summary"
    assert "xproxy-user-id" not in provider.received[0].headers


def test_a_request_without_genai_calls_makes_no_query(
    client: Client, make_user: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(make_user("alice", account="acme"))
    with django_assert_num_queries(0):
        assert client.get("/plain/").status_code == 200


def test_user_and_account_are_resolved_once_at_the_first_call(
    client: Client,
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    django_assert_num_queries: Any,
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    before = accounts.calls["account_name"]
    # The session, the user, the membership: once, for two calls.
    with django_assert_num_queries(3):
        assert client.get("/twice/").status_code == 200
    assert accounts.calls["account_name"] == before + 1
    assert [c.context.account_name for c in payi_calls] == ["acme", "acme"]
    assert len({c.context.use_case_id for c in payi_calls}) == 1


def test_work_handed_on_keeps_its_attribution_but_not_the_request(
    client: Client, make_user: Any, provider: FakeProvider
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    response = client.get("/handed-on/")
    assert response.content == b"queued"
    del response  # the test client's response refers to its request
    gc.collect()
    request, task = views.handed_on_work.pop()
    assert request() is None  # the queued task holds the attribution, not the request
    task()
    sent = [(r.headers["xproxy-user-id"], r.headers["xproxy-account-name"]) for r in provider.received]
    assert sent == [(str(alice.pk), "acme")] * 2


def test_get_context_in_a_view_resolves_the_user(client: Client, make_user: Any) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    ctx = client.get("/context/", HTTP_X_REQUEST_ID="r-2").json()
    assert ctx["user_id"] == str(alice.pk)
    assert ctx["account_name"] == "acme"
    assert ctx["request_properties"] == {"request_id": "r-2"}


def test_excluded_paths_get_no_request_scope(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client.force_login(make_user("alice", account="acme"))
    assert client.get("/health/genai/", HTTP_X_REQUEST_ID="r-3").status_code == 200
    [call] = payi_calls
    assert call.context.user_id is None
    assert call.context.request_properties is None
    assert call.context.limit_ids == ("monthly-cap",)  # the application-wide defaults still apply


def test_nested_tracked_helpers_inherit_the_view_and_request_scope(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    assert client.get("/nested/").status_code == 200
    outline, body = payi_calls
    assert (outline.context.use_case_name, outline.context.use_case_step) == ("nested", "outline")
    assert (body.context.use_case_name, body.context.use_case_step) == ("nested", None)
    assert outline.context.use_case_id == body.context.use_case_id
    assert outline.context.user_id == body.context.user_id == str(alice.pk)


def test_a_failing_resolver_is_logged_once_and_the_request_goes_on(
    client: Client,
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    forget_warnings: None,
) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.failing_resolver"}
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        assert client.get("/summary/").status_code == 200
        assert client.get("/summary/").status_code == 200
    assert [c.context.account_name for c in payi_calls] == [None, None]
    assert [c.context.user_id for c in payi_calls] == [str(alice.pk)] * 2
    [record] = [r for r in caplog.records if "ACCOUNT_NAME" in r.getMessage()]
    assert record.exc_info is not None and "resolver broke on purpose" in str(record.exc_info[1])


def test_a_failing_context_callable_is_logged_once_and_the_request_goes_on(
    client: Client,
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
    caplog: pytest.LogCaptureFixture,
    forget_warnings: None,
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        for _ in range(2):
            assert client.get("/summary/", HTTP_X_BREAK_CONTEXT="1", HTTP_X_REQUEST_ID="r").status_code == 200
    assert [c.context.request_properties for c in payi_calls] == [None, None]
    assert [c.context.account_name for c in payi_calls] == ["acme", "acme"]
    [record] = [r for r in caplog.records if "CONTEXT" in r.getMessage()]
    assert record.exc_info is not None


def test_a_bad_context_field_is_left_out_and_the_others_kept(
    client: Client, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any, forget_warnings: None
) -> None:
    settings.PAYI = {
        **settings.PAYI,
        "CONTEXT": lambda request: {"limit_ids": "not-a-list", "resource_scope": "from-context"},
    }
    assert client.get("/summary/").status_code == 200
    [call] = payi_calls
    assert call.context.resource_scope == "from-context"
    assert call.context.limit_ids == ("monthly-cap",)


def test_a_custom_user_id_resolver_and_context_overrides(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    settings.PAYI = {
        "USER_ID": lambda request: request.user.username if request.user.is_authenticated else None,
        "CONTEXT": lambda request: {"account_name": "from-context", "use_case_properties": {"tier": "gold"}},
        "USE_CASE_NAME": "app",
        "USE_CASE_VERSION": 3,
    }
    client.force_login(make_user("alice", account="acme"))
    assert client.get("/summary/").status_code == 200
    [call] = payi_calls
    assert call.context.user_id == "alice"
    assert call.context.account_name == "from-context"
    assert call.context.use_case_version == 3
    assert call.context.use_case_properties == {"tier": "gold"}
    assert call.context.limit_ids is None  # the settings were replaced whole


def test_an_async_resolver_works_from_a_sync_view(
    client: Client, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, settings: Any
) -> None:
    settings.PAYI = {**settings.PAYI, "ACCOUNT_NAME": "tests.django.project.accounts.aaccount_name"}
    client.force_login(make_user("alice", account="acme"))
    assert client.get("/summary/").status_code == 200
    assert payi_calls[0].context.account_name == "acme"


@pytest.mark.parametrize("action", ["nothing", "read", "switch", "logout"])
def test_the_default_user_id_is_request_user_at_the_first_call(
    client: Client, make_user: Any, provider: FakeProvider, action: str
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    client.force_login(alice)
    body = client.get("/user-changed/", {"do": action, "to": "bob"}).json()
    expected = {"nothing": alice.pk, "read": alice.pk, "switch": bob.pk, "logout": None}[action]
    assert body == {"user_id": None if expected is None else str(expected), "current": expected}
    [sent] = provider.received
    assert sent.headers.get("xproxy-user-id") == (None if expected is None else str(expected))
