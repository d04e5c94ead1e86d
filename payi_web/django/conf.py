"""The `PAYI` setting: validated once (at start-up, in `AppConfig.ready()`), re-read when tests change it.

Validation is the shared `payi_web.settings` model; a bad value raises `ImproperlyConfigured`
naming the key (`PAYI['USER_ID']: ...`). `override_settings(PAYI=...)` and pytest-django's
`settings` fixture take effect: they send `setting_changed`, on which the settings are re-read
and applied again.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..settings import PayiSettings, SettingsError, apply_settings, load_settings
from ..web import setting_message

__all__ = ["get_settings", "load", "reload"]

_lock = threading.Lock()
_current: PayiSettings | None = None


def where(key: str) -> str:
    """A setting as Django's users write it: `PAYI['USER_ID']`."""
    return "PAYI" if key == "PAYI" else f"PAYI[{key!r}]"


def _improperly_configured(exc: SettingsError) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{where(exc.key)}: {setting_message(exc, str)}")


def raw_settings() -> Any:
    """`settings.PAYI` as given (an empty dict when absent)."""
    return getattr(django_settings, "PAYI", {})


def load() -> PayiSettings:
    """Validate `settings.PAYI` without applying it. Raises ImproperlyConfigured naming the key."""
    try:
        return load_settings(raw_settings())
    except SettingsError as exc:
        raise _improperly_configured(exc) from None


def reload() -> PayiSettings:
    """Validate `settings.PAYI` and apply it (`configure()`, and `instrument()` unless INSTRUMENT is off)."""
    global _current
    with _lock:
        loaded = load()
        try:
            apply_settings(loaded)
        except SettingsError as exc:
            raise _improperly_configured(exc) from None
        _current = loaded
        return loaded


def get_settings() -> PayiSettings:
    """The settings in effect (loaded and applied on first use if `ready()` has not done it)."""
    current = _current
    return current if current is not None else reload()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "PAYI":
        reload()


setting_changed.connect(_on_setting_changed, dispatch_uid="payi_web.django.conf")
