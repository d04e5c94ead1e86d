"""`payi_web.track` on every kind of Django and DRF view, and the core's class/coroutine support."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.test import AsyncClient, Client
from django.views import View
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from payi_web import get_context, track, track_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls

from .project import views


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "use_case"),
    [("/summary/", "summary"), ("/cbv/", "cbv"), ("/md/", "md"), ("/api/class-chat/", "drf-class")],
)
def test_sync_views_of_every_kind(
    path: str,
    use_case: str,
    client: Client,
    make_user: Any,
    provider: FakeProvider,
    payi_calls: CapturedCalls,
) -> None:
    alice = make_user("alice", account="acme")
    client.force_login(alice)
    assert client.get(path, HTTP_X_REQUEST_ID="d-1").status_code == 200
    [call] = payi_calls
    assert call.context.use_case_name == use_case
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.request_properties == {"request_id": "d-1"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "use_case"), [("/acbv/", "acbv"), ("/amd/", "amd"), ("/achat/", "achat")])
async def test_async_views_of_every_kind(
    path: str, use_case: str, make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    from asgiref.sync import sync_to_async

    alice = await sync_to_async(make_user)("alice", account="acme")
    client = AsyncClient()
    await sync_to_async(client.force_login)(alice)
    response = await client.get(path, headers={"X-Request-Id": "d-2"})
    assert response.status_code == 200
    [call] = payi_calls
    assert call.context.use_case_name == use_case
    assert (call.context.user_id, call.context.account_name) == (str(alice.pk), "acme")
    assert call.context.request_properties == {"request_id": "d-2"}


def test_class_decorator_keeps_as_view_and_async_detection() -> None:
    assert views.TrackedView.__name__ == "TrackedView"
    assert not views.TrackedView.view_is_async
    assert views.AsyncTrackedView.view_is_async
    assert iscoroutinefunction(views.AsyncTrackedView.as_view())
    assert not iscoroutinefunction(views.TrackedView.as_view())
    assert views.TrackedView.dispatch.__wrapped__ is View.dispatch  # type: ignore[attr-defined]
    assert View.dispatch is inspect.getattr_static(View, "dispatch")  # the base class is untouched


def test_class_decorator_needs_a_dispatch_method() -> None:
    with pytest.raises(TypeError, match="dispatch"):
        track(use_case_name="x")(int)


def test_a_sync_function_returning_a_coroutine_runs_it_in_its_scope() -> None:
    # Django's View.dispatch is sync and returns the async handler's coroutine.
    async def handler() -> str | None:
        await asyncio.sleep(0)
        return get_context().use_case_name

    @track(use_case_name="dispatched")
    def dispatch() -> Any:
        return handler()

    async def main() -> str | None:
        with track_context(user_id="u"):
            coroutine = dispatch()
        return await coroutine  # type: ignore[no-any-return]

    assert asyncio.run(main()) == "dispatched"


@pytest.mark.django_db
def test_drf_token_auth_emits_the_user_drf_authenticated(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls, django_assert_num_queries: Any
) -> None:
    bob = make_user("bob", account="globex")
    token = Token.objects.create(user=bob)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.post("/api/chat/", {}, format="json", HTTP_X_REQUEST_ID="t-1")
    assert response.status_code == 200 and response.json()["user"] == bob.pk
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(bob.pk), "globex")
    assert call.context.use_case_name == "drf"
    assert call.context.request_properties == {"request_id": "t-1"}


@pytest.mark.django_db
def test_the_user_drf_authenticated_wins_over_the_session_user(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    alice = make_user("alice", account="acme")
    bob = make_user("bob", account="globex")
    api = APIClient()
    api.force_login(alice)  # Django's session user...
    token = Token.objects.create(user=bob)  # ...but DRF authenticates the token first
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.post("/api/chat/", {}, format="json").json()["user"] == bob.pk
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(bob.pk), "globex")


@pytest.mark.django_db
def test_drf_session_auth_and_function_views(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    carol = make_user("carol", account="initech")
    api = APIClient(enforce_csrf_checks=False)
    api.force_login(carol)
    assert api.post("/api/function/", {}, format="json").status_code == 200
    assert api.get("/api/chats/").status_code == 200
    assert [c.context.use_case_name for c in payi_calls] == ["drf-function", "drf-viewset"]
    assert {(c.context.user_id, c.context.account_name) for c in payi_calls} == {(str(carol.pk), "initech")}


@pytest.mark.django_db
def test_drf_rejects_an_unauthenticated_request_without_a_call(provider: FakeProvider) -> None:
    assert APIClient().post("/api/chat/", {}, format="json").status_code in (401, 403)
    assert provider.received == []


@pytest.mark.django_db(transaction=True)
async def test_drf_token_user_under_asgi(
    make_user: Any, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    from asgiref.sync import sync_to_async

    bob = await sync_to_async(make_user)("bob", account="globex")
    token = await Token.objects.acreate(user=bob)
    response = await AsyncClient().post(
        "/api/chat/", {}, content_type="application/json", headers={"Authorization": f"Token {token.key}"}
    )
    assert response.status_code == 200
    [call] = payi_calls
    assert (call.context.user_id, call.context.account_name) == (str(bob.pk), "globex")
