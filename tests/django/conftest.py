"""The Django tests' project and fixtures.

DJANGO_SETTINGS_MODULE is set here, when pytest loads this directory, so that the rest of the
suite (core, Flask) runs as before; pytest-django then finds Django configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

SETTINGS_MODULE = "tests.django.project.settings"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    try:  # as pytest-django does when it sets Django up itself: no DB access without django_db
        from pytest_django.plugin import blocking_manager_key

        config.stash[blocking_manager_key].block()
    except (ImportError, KeyError):
        pass


import payi_web  # noqa: E402
from payi_web.core.log import forget  # noqa: E402
from payi_web.fake_provider import FakeProvider  # noqa: E402


@pytest.fixture(autouse=True)
def _payi_settings(_fresh_configuration: None) -> Iterator[None]:
    # The suite's autouse fixture resets configure() for every test: apply settings.PAYI again.
    from payi_web.django import conf

    conf.reload()
    yield


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """A fake OpenAI behind the Pay-i proxy URL, in-process; the views' clients point at it."""
    from .project import genai

    fake = FakeProvider()
    genai.use(payi_web.proxy_url("openai"), fake)
    yield fake
    genai.target = None


@pytest.fixture
def forget_warnings() -> Iterator[None]:
    """warn_once() logs each kind once per process: let this test see its warnings."""
    kinds = [
        "resolver:PAYI['USER_ID']",
        "resolver:PAYI['ACCOUNT_NAME']",
        "resolver:PAYI['CONTEXT']",
        "context-field:PAYI['CONTEXT']:limit_ids",
        "resolver-type:PAYI['ACCOUNT_NAME']",
    ]
    for kind in kinds:
        forget(kind)
    yield
    for kind in kinds:
        forget(kind)


@pytest.fixture
def make_user(db: None) -> object:
    """make_user("alice", account="acme", staff=False) -> a saved User (with a Membership if account)."""
    from django.contrib.auth.models import User

    from .project.models import Membership

    def make(username: str, *, account: str | None = None, staff: bool = False) -> User:
        user: User = User.objects.create(username=username, is_staff=staff)
        if account is not None:
            Membership.objects.create(user=user, account_name=account)
        return user

    return make


def account_of(n: int) -> str:
    return f"acct{n % 3}"


def check_one_call_per_user(
    calls: Any, users: list[Any], use_case: tuple[str, str], request_ids: str, caplog: Any
) -> None:
    """One call per user, each with its own user, account and request id and the given use case
    and step (users made as `user{n}` of `account_of(n)`, request ids `{request_ids}-{pk}`);
    no scope left out of order."""
    accounts = {str(user.pk): account_of(n) for n, user in enumerate(users)}
    assert len(calls) == len(users)
    assert {call.context.user_id for call in calls} == set(accounts)
    for call in calls:
        assert call.context.account_name == accounts[call.context.user_id]
        assert (call.context.use_case_name, call.context.use_case_step) == use_case
        assert call.context.request_properties == {"request_id": f"{request_ids}-{call.context.user_id}"}
    assert not [r for r in caplog.records if "out of order" in r.getMessage()]


def check_drafts_body(body: str) -> None:
    """The `/drafts/` body: the step inside the scope, before and after its yield; none after it."""
    first, second, third = body.splitlines()
    assert (first, third) == ("drafting", "None")
    assert second.startswith("drafting:") and "offline demo model" in second
