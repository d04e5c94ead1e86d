"""What every web framework layer needs for a request's scope, solved once, with no framework in it.

- a resolver (the request's user id or account name, sync or `async def`) as a `Deferred`,
  run the framework's way where it is needed (`resolver_deferred`, `Runner`);
- a CONTEXT resolver's answer, validated like `track()` arguments, a bad field left out
  (`context_fields`, `context_failed`);
- a bad setting, spoken in the framework's key names, with the closest valid one
  (`setting_message`);
- the security checks of the settings: the Pay-i proxy without an API key, a plain-http base
  URL outside debug (`security_findings`).
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .core.fields import Deferred, validate_fields
from .core.log import warn_once
from .settings import PayiSettings, SettingsError

__all__ = [
    "Finding",
    "Runner",
    "context_failed",
    "context_fields",
    "resolver_deferred",
    "security_findings",
    "setting_message",
]

T = TypeVar("T")
Spelling = Callable[[str], str]


class Runner:
    """How a framework runs a request's resolver where it is needed; this base runs it in place.

    Subclasses change what the framework needs changed (Django: never on an event loop's
    thread, `sync_to_async` from async code, `async_to_sync` for an `async def` resolver).
    """

    def sync(self, resolver: Callable[[], T]) -> T:
        """A plain resolver, needed by sync code (a sync GenAI client, `get_context()`)."""
        return resolver()

    async def from_async(self, resolver: Callable[[], T]) -> T:
        """A plain resolver, needed by async code (an async GenAI client)."""
        return resolver()

    def await_from_sync(self, deferred: Deferred, resolver: Callable[[], Awaitable[T]]) -> T:
        """An `async def` resolver, needed by sync code; `deferred` is the value being resolved."""
        raise TypeError(f"{deferred!r}: an async resolver cannot be run from sync code here")


IN_PLACE = Runner()


def resolver_deferred(
    resolver: Callable[[], Any], *, name: str, runner: Runner = IN_PLACE, is_async: bool | None = None
) -> Deferred:
    """A `Deferred` that runs `resolver` (a callable of no arguments, sync or `async def`) on first use.

    `name` names it in log messages; `is_async` (default: `inspect.iscoroutinefunction`) is
    passed by a framework that decided it once, its own way.
    """
    if is_async is None:
        is_async = inspect.iscoroutinefunction(resolver)
    if is_async:
        deferred = Deferred(lambda: runner.await_from_sync(deferred, resolver), aresolve=resolver, name=name)
        return deferred
    if runner is IN_PLACE:
        return Deferred(resolver, name=name)
    return Deferred(lambda: runner.sync(resolver), aresolve=lambda: runner.from_async(resolver), name=name)


def context_fields(where: str, value: object) -> dict[str, Any]:
    """A CONTEXT resolver's answer as validated context fields (None: none).

    Not a dict: `TypeError`. A bad field is logged once (with the reason) and left out; the
    others are kept.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must return a dict of context fields, got {type(value).__name__}")
    try:
        return validate_fields(where, dict(value))
    except (TypeError, ValueError):
        pass
    fields: dict[str, Any] = {}
    for key, item in value.items():
        try:
            fields.update(validate_fields(where, {key: item}))
        except (TypeError, ValueError):
            warn_once(
                f"context-field:{where}:{key}",
                "payi_web: %s: bad field; it is left unset",
                where,
                exc_info=True,
            )
    return fields


def context_failed(where: str) -> None:
    """Log (once, with the traceback) that a CONTEXT resolver raised: call it in the `except`."""
    warn_once(f"resolver:{where}", "payi_web: %s raised; its fields are left unset", where, exc_info=True)


def setting_message(exc: SettingsError, spell: Spelling) -> str:
    """The shared settings' error without its key, the keys it names spelled as the framework does.

    `spell("USER_ID")` is how the framework's users write a key (`'USER_ID'`, `'PAYI_USER_ID'`).
    """
    message = str(exc).removeprefix(f"{exc.key}: ")
    if exc.key not in PayiSettings.model_fields and message.startswith("unknown setting"):
        close = difflib.get_close_matches(exc.key.upper(), PayiSettings.model_fields, n=1)
        hint = f" (did you mean {spell(close[0])!r}?)" if close else ""
        message = f"unknown setting{hint}; valid: {', '.join(map(spell, PayiSettings.model_fields))}"
    return message


@dataclass(frozen=True)
class Finding:
    """A problem of the settings, as a framework's checks report it (`code`: W002, W003)."""

    code: str
    message: str
    hint: str


def security_findings(
    settings: PayiSettings,
    *,
    debug: bool,
    where: Spelling,
    api_key: str | None = None,
    base_url: str | None = None,
) -> list[Finding]:
    """The Pay-i proxy without an API key (W002); a plain-http base URL outside debug (W003).

    `api_key` and `base_url` are the effective ones (default: the settings', else the
    `PAYI_API_KEY` / `PAYI_BASE_URL` environment variables); `where(key)` names a setting.
    """
    api_key = api_key or settings.API_KEY or os.environ.get("PAYI_API_KEY")
    base_url = base_url or settings.BASE_URL or os.environ.get("PAYI_BASE_URL")
    findings: list[Finding] = []
    if settings.PROXY and not api_key:
        findings.append(
            Finding(
                "W002",
                f"{where('PROXY')} is true but no Pay-i API key is configured: calls through the Pay-i "
                "proxy will be refused",
                f"set {where('API_KEY')} (e.g. read from the environment) or PAYI_API_KEY",
            )
        )
    if base_url and urlsplit(base_url).scheme.lower() != "https" and not debug:
        findings.append(
            Finding(
                "W003",
                f"the Pay-i base URL {base_url!r} is not https outside debug mode: the Pay-i API key and "
                "the attribution headers would travel unencrypted",
                f"use an https:// URL ({where('BASE_URL')} or PAYI_BASE_URL) in production",
            )
        )
    return findings
