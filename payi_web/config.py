"""`configure()`: the process-wide configuration, replaced whole by each call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._fields import validate_fields
from .context import EMPTY_FRAME, derive, set_root

__all__ = ["configure"]


def configure(*, defaults: Mapping[str, Any] | None = None) -> None:
    """Set the application-wide defaults: the root scope that applies in every thread and task.

    `defaults` takes the fields of `track()` and follows the same rules, computed once from an
    empty parent (so `{"use_case_name": "app"}` starts one application-wide use case instance).
    Calling `configure()` again replaces the previous configuration; `configure()` resets it.
    Bad values raise `TypeError`/`ValueError` here, naming the field.
    """
    if defaults is not None and not isinstance(defaults, Mapping):
        raise TypeError(f"configure(): defaults must be a dict, got {type(defaults).__name__}")
    args = validate_fields("configure(defaults)", defaults or {})
    set_root(derive(EMPTY_FRAME, args))
