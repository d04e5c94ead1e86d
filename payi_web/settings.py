"""The web-framework settings, shared by Django (`PAYI = {...}`) and Flask (`PAYI_*` config keys).

One pydantic model validates both, at start-up: an unknown key names the closest valid one, a
wrong type names the key. `apply_settings()` maps them onto `configure()` and `instrument()`.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._configure import configure
from .core.field_table import FIELDS
from .core.fields import validate_fields

__all__ = ["PayiSettings", "SettingsError", "apply_settings", "import_callable", "load_settings"]

Resolver = Callable[..., Any]

# Settings keys that are context defaults, and the field each one sets (from the field table).
CONTEXT_DEFAULT_KEYS: Final[dict[str, str]] = {
    spec.setting: spec.name for spec in FIELDS if spec.setting is not None
}


class SettingsError(ValueError):
    """A bad setting; `key` names it (Django raises it as ImproperlyConfigured)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def import_callable(path: str) -> Resolver:
    """`package.module.name` or `package.module:name` -> the callable it names."""
    module_name, sep, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_name or not attr:
        raise ValueError(f"{path!r} is not a dotted path like 'package.module.function'")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {path!r}: {exc}") from exc
    if not callable(target):
        raise ValueError(f"{path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _resolver(value: Any) -> Resolver | None:
    if value is None or callable(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return import_callable(value)
    raise ValueError(f"must be a callable or a dotted path string, got {type(value).__name__}")


class PayiSettings(BaseModel):
    """The validated settings. Field names are the keys without the framework's prefix.

    Static, for type checkers; tests/test_field_table.py keeps its context defaults (the keys
    from USE_CASE_NAME on) in step with the field table.
    """

    # Strict: "1" is not a version, "yes" is not a bool; a typo in settings should fail loudly.
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, strict=True)

    USER_ID: Resolver | None = None  # None: the framework's default (the authenticated user's id)
    ACCOUNT_NAME: Resolver | None = None
    CONTEXT: Resolver | None = None
    EXCLUDE_PATHS: tuple[re.Pattern[str], ...] = ()
    INSTRUMENT: bool = True
    API_KEY: str | None = Field(default=None, repr=False)
    BASE_URL: str | None = None
    HEADER_HOSTS: list[str] = []
    LEDGER: str | bool | None = None
    PRICES: dict[str, tuple[float, float]] = {}
    USE_CASE_NAME: str | None = None
    USE_CASE_VERSION: int | None = None
    LIMIT_IDS: list[str] | None = None
    REQUEST_PROPERTIES: dict[str, str | None] | None = None
    USE_CASE_PROPERTIES: dict[str, str | None] | None = None
    RESOURCE_SCOPE: str | None = None
    PRICE_AS_CATEGORY: str | None = None
    PRICE_AS_RESOURCE: str | None = None
    PROXY: bool | None = None
    LOG_PROMPT_AND_RESPONSE: bool | None = None

    @field_validator("USER_ID", "ACCOUNT_NAME", "CONTEXT", mode="before")
    @classmethod
    def _import(cls, value: Any) -> Resolver | None:
        return _resolver(value)

    @field_validator("EXCLUDE_PATHS", mode="before")
    @classmethod
    def _compile(cls, value: Any) -> tuple[re.Pattern[str], ...]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError("must be a list of regular expressions")
        try:
            return tuple(re.compile(item) if isinstance(item, str) else item for item in value)
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from exc

    @field_validator("HEADER_HOSTS", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of URL prefixes, not a str")
        return list(value) if isinstance(value, tuple) else value

    @field_validator("PRICES", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        return value

    def context_defaults(self) -> dict[str, Any]:
        """The application-wide context fields these settings give."""
        return {
            field: getattr(self, key)
            for key, field in CONTEXT_DEFAULT_KEYS.items()
            if getattr(self, key) is not None
        }

    def is_excluded(self, path: str) -> bool:
        for pattern in self.EXCLUDE_PATHS:  # noqa: SIM110 -- not any(genexpr): this runs on every request
            if pattern.search(path):
                return True
        return False

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.__dict__.items() if k != "API_KEY" and v not in (None, (), {})}
        return f"PayiSettings(API_KEY=<{'set' if self.API_KEY else 'unset'}>, {shown})"


def _first_error(exc: ValidationError) -> SettingsError:
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else "?"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key.upper(), PayiSettings.model_fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return SettingsError(key, f"unknown setting{hint}; valid: {', '.join(PayiSettings.model_fields)}")
    message = str(error["msg"]).removeprefix("Value error, ")
    return SettingsError(key, message)


def load_settings(raw: Mapping[str, Any]) -> PayiSettings:
    """Validate framework settings (keys without their prefix). Raises SettingsError naming the key."""
    if not isinstance(raw, Mapping):
        raise SettingsError("PAYI", f"must be a dict, got {type(raw).__name__}")
    try:
        settings = PayiSettings.model_validate(dict(raw))
    except ValidationError as exc:
        raise _first_error(exc) from None
    for key, field in CONTEXT_DEFAULT_KEYS.items():
        value = getattr(settings, key)
        if value is not None:
            try:
                validate_fields("settings", {field: value})
            except (TypeError, ValueError) as exc:
                raise SettingsError(key, str(exc)) from None
    return settings


def apply_settings(settings: PayiSettings) -> None:
    """Map the settings onto `configure()` (replacing the configuration) and, if asked, `instrument()`."""
    from .instrument import instrument

    try:
        configure(
            defaults=settings.context_defaults(),
            api_key=settings.API_KEY,
            base_url=settings.BASE_URL,
            header_hosts=settings.HEADER_HOSTS,
            ledger=settings.LEDGER,
            prices=settings.PRICES,
        )
    except (TypeError, ValueError) as exc:
        key = next(
            (k for k in ("BASE_URL", "HEADER_HOSTS", "LEDGER", "PRICES", "API_KEY") if k.lower() in str(exc)),
            "PAYI",
        )
        raise SettingsError(key, str(exc)) from None
    if settings.INSTRUMENT:
        instrument()
