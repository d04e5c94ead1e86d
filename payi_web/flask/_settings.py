"""Flask's `PAYI_*` config keys: the shared settings model's keys with a prefix, validated in `init_app`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Final

from ..settings import PayiSettings, SettingsError, load_settings
from ..web import setting_message

__all__ = ["PREFIX", "RESOLVER_KEYS", "check_resolver", "describe", "load_flask_settings", "prefixed"]

PREFIX: Final = "PAYI_"
RESOLVER_KEYS: Final = ("USER_ID", "ACCOUNT_NAME", "CONTEXT")


def describe(fn: object) -> str:
    """`module:qualname` of a callable, for messages and `flask payi check`."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}:{name}" if module else str(name)


def check_resolver(key: str, fn: object) -> None:
    """A resolver runs in the request's thread with no arguments: say so at start-up, not per request."""
    if not callable(fn):
        raise SettingsError(key, f"must be a callable or a dotted path string, got {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise SettingsError(
            key, f"{describe(fn)} is an async function; Flask resolvers are plain functions with no arguments"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        signature.bind()
    except TypeError:
        raise SettingsError(
            key,
            f"{describe(fn)}{signature} must take no arguments (read flask.request, g or current_user)",
        ) from None


def load_flask_settings(config: Mapping[str, Any]) -> PayiSettings:
    """The `PAYI_*` keys of a Flask config, validated by the shared model; errors name the `PAYI_` key."""
    raw = {key[len(PREFIX) :]: value for key, value in config.items() if key.startswith(PREFIX)}
    try:
        settings = load_settings(raw)
    except SettingsError as exc:
        raise prefixed(exc) from None
    for key in RESOLVER_KEYS:
        fn = getattr(settings, key)
        if fn is not None:
            check_resolver(PREFIX + key, fn)
    return settings


def spell(key: str) -> str:
    """A setting as Flask's users write it: `PAYI_USER_ID`."""
    return key if key.startswith(PREFIX) or key == "PAYI" else PREFIX + key


def prefixed(exc: SettingsError) -> SettingsError:
    """The shared model's error, spoken in Flask's key names (`USRE_ID` -> `PAYI_USRE_ID`)."""
    if exc.key.startswith(PREFIX) or exc.key == "PAYI":
        return exc
    return SettingsError(spell(exc.key), setting_message(exc, spell))
