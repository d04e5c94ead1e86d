"""System checks: each one firing, and not firing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payi_web.django.checks import check_middleware, check_settings

SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
PAYI = "payi_web.django.middleware.PayiMiddleware"
CUSTOM = "tests.django.project.middleware.CustomPayiMiddleware"


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages if m.id.startswith("payi_web.")]


def test_the_test_project_passes_every_check() -> None:
    assert ids(run_checks()) == []
    call_command("check", "--fail-level", "WARNING")


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        ([SESSIONS, AUTH, PAYI], []),
        ([SESSIONS, AUTH, CUSTOM], []),
        ([PAYI], []),  # no AuthenticationMiddleware at all: nothing to be after
        ([SESSIONS, AUTH], ["payi_web.E001"]),
        ([SESSIONS, AUTH, PAYI, PAYI], ["payi_web.E002"]),
        ([SESSIONS, AUTH, PAYI, CUSTOM], ["payi_web.E002"]),
        ([SESSIONS, PAYI, AUTH], ["payi_web.W001"]),
        ([PAYI, SESSIONS, AUTH, PAYI], ["payi_web.E002", "payi_web.W001"]),
        (["no.such.Middleware", SESSIONS, AUTH, PAYI], []),
    ],
)
def test_middleware_checks(middleware: list[str], expected: list[str], settings: Any) -> None:
    settings.MIDDLEWARE = middleware
    messages = check_middleware()
    assert ids(messages) == expected
    assert all(m.hint for m in messages)


def test_a_missing_middleware_fails_manage_py_check(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSIONS, AUTH]
    with pytest.raises(SystemCheckError, match=r"payi_web\.E001"):
        call_command("check")


def test_invalid_settings_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    # Set without setting_changed (which would raise at once): as if changed behind Django's back.
    monkeypatch.setattr(settings, "PAYI", {"USRE_ID": "x.y"})
    [error] = check_settings()
    assert error.id == "payi_web.E003"
    assert "USRE_ID" in error.msg and "did you mean 'USER_ID'" in error.msg
    assert error.hint


@pytest.mark.parametrize(
    ("payi", "env", "expected"),
    [
        ({"PROXY": True}, {}, ["payi_web.W002"]),
        ({"PROXY": True, "API_KEY": "payi-key"}, {}, []),
        ({"PROXY": True}, {"PAYI_API_KEY": "payi-key"}, []),
        ({"PROXY": False}, {}, []),
        ({"BASE_URL": "http://payi.internal:8080", "API_KEY": "k"}, {}, ["payi_web.W003"]),
        ({"API_KEY": "k"}, {"PAYI_BASE_URL": "http://payi.internal"}, ["payi_web.W003"]),
        ({"BASE_URL": "https://payi.internal", "API_KEY": "k"}, {}, []),
        ({}, {}, []),
    ],
)
def test_settings_warnings(
    payi: dict[str, Any],
    env: dict[str, str],
    expected: list[str],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    monkeypatch.delenv("PAYI_BASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.PAYI = payi
    messages = check_settings()
    assert ids(messages) == expected
    assert all(m.hint and m.is_serious() is False for m in messages)


def test_a_plain_http_base_url_is_fine_in_debug(settings: Any) -> None:
    settings.DEBUG = True
    settings.PAYI = {"BASE_URL": "http://127.0.0.1:8000", "API_KEY": "k"}
    assert ids(check_settings()) == []
