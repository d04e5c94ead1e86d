"""System checks (`python manage.py check`), registered when the app is ready.

- payi_web.E001: the app is installed but `PayiMiddleware` is not in MIDDLEWARE.
- payi_web.E002: `PayiMiddleware` is listed more than once.
- payi_web.E003: `settings.PAYI` is invalid.
- payi_web.W001: `PayiMiddleware` comes before `AuthenticationMiddleware`.
- payi_web.W002: `PROXY` is true but no Pay-i API key is configured.
- payi_web.W003: the Pay-i `BASE_URL` is not https outside DEBUG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..settings import PayiSettings
from ..web import security_findings
from . import conf

__all__ = ["check_middleware", "check_settings"]

MIDDLEWARE_PATH = "payi_web.django.middleware.PayiMiddleware"
AUTH_MIDDLEWARE_PATH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _is_subclass(path: str, base_path: str) -> bool:
    if path == base_path:
        return True
    try:
        candidate = import_string(path)
        base = import_string(base_path)
    except ImportError:
        return False
    return isinstance(candidate, type) and issubclass(candidate, base)


def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    middleware = list(getattr(django_settings, "MIDDLEWARE", None) or [])
    ours = [i for i, path in enumerate(middleware) if _is_subclass(path, MIDDLEWARE_PATH)]
    if not ours:
        return [
            checks.Error(
                "'payi_web.django' is installed but PayiMiddleware is not in MIDDLEWARE: "
                "requests get no user, account or CONTEXT attribution.",
                hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE, after {AUTH_MIDDLEWARE_PATH!r}.",
                id="payi_web.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    if len(ours) > 1:
        errors.append(
            checks.Error(
                f"PayiMiddleware is listed {len(ours)} times in MIDDLEWARE: each request would get "
                "nested scopes and resolve its user and account more than once.",
                hint="Keep one PayiMiddleware entry.",
                id="payi_web.E002",
            )
        )
    auth = [i for i, path in enumerate(middleware) if _is_subclass(path, AUTH_MIDDLEWARE_PATH)]
    if auth and ours[0] < auth[0]:
        errors.append(
            checks.Warning(
                "PayiMiddleware comes before AuthenticationMiddleware: request.user does not exist "
                "yet when the request's scope starts (CONTEXT cannot read it, and a GenAI call made by "
                "a middleware in between has no user id).",
                hint=f"Move {MIDDLEWARE_PATH!r} after {AUTH_MIDDLEWARE_PATH!r}.",
                id="payi_web.W001",
            )
        )
    return errors


def _sentence(text: str) -> str:
    # The shared findings are phrased for a CLI line; Django's messages and hints are sentences.
    return f"{text[:1].upper()}{text[1:]}."


def _settings_warnings(settings: PayiSettings) -> list[checks.CheckMessage]:
    return [
        checks.Warning(
            _sentence(finding.message), hint=_sentence(finding.hint), id=f"payi_web.{finding.code}"
        )
        for finding in security_findings(settings, debug=django_settings.DEBUG, where=conf.where)
    ]


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        settings = conf.load()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                f"Invalid Pay-i settings: {exc}",
                hint="See the PAYI keys in payi-web's README (Django section).",
                id="payi_web.E003",
            )
        ]
    return _settings_warnings(settings)


def register() -> None:
    checks.register(check_middleware, "payi_web")
    checks.register(check_settings, "payi_web", checks.Tags.security)
