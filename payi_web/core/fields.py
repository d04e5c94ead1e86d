"""The validation of scope arguments, and `TrackFields`, the static type of `track(**fields)`.

Validation runs once per `@track` decoration and once per `track_context()` entry, so it is
hand-written (a dict lookup and an isinstance per argument, each field's kind from the field
table) rather than a pydantic model: it sits on the hot path and must cost well under a
microsecond.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any, Final, TypedDict

from .deferred import Deferred
from .field_table import BOOL, FIELD_NAMES, FIELDS, IDS, INT, LAZY_STR, PROPS, STR, Kind

__all__ = ["FIELD_NAMES", "Deferred", "TrackFields", "validate_fields"]

_MAX_INT: Final = 2**63 - 1
_FIELD_KINDS: Final[dict[str, Kind]] = {spec.name: spec.kind for spec in FIELDS}
_STR_FIELDS: Final = frozenset(spec.name for spec in FIELDS if spec.kind in (STR, LAZY_STR))
_PROPS_FIELDS: Final = frozenset(spec.name for spec in FIELDS if spec.kind is PROPS)


def _closest(name: str) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, FIELD_NAMES, n=1)
    return matches[0] if matches else None


def _unknown_field(where: str, name: str) -> TypeError:
    hint = _closest(name)
    suggestion = f" (did you mean {hint!r}?)" if hint else ""
    return TypeError(f"{where}: unknown field {name!r}{suggestion}; valid fields: {', '.join(FIELD_NAMES)}")


def _type_name(value: object) -> str:
    return type(value).__name__


# The offending value as an error message shows it: bounded in depth and length, since the
# built-in repr of a deeply nested dict raises RecursionError instead of the TypeError meant.
_reprs: Final = reprlib.Repr()
_reprs.maxlevel = 3
_reprs.maxstring = _reprs.maxother = 80


def _shown(value: object) -> str:
    try:
        return _reprs.repr(value)
    except Exception:  # an object whose own __repr__ fails, or recurses without end
        return f"<{_type_name(value)}>"


def _check_ids(where: str, name: str, value: object) -> tuple[str, ...]:
    # A str is iterable too: "a,b" would silently become ["a", ",", "b"].
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where}: {name} must be a list of str, got {_type_name(value)} {_shown(value)}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{where}: {name} items must be str, got {_type_name(item)} {_shown(item)}")
        if not item or "," in item:
            # The ids travel comma-joined in one header: an empty id or a comma would corrupt it.
            raise ValueError(
                f"{where}: {name} items must be non-empty and contain no comma, got {_shown(item)}"
            )
    return tuple(value)


def _check_props(where: str, name: str, value: object) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: {name} must be a dict of str to str or None, got {_type_name(value)}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: {name} keys must be str, got {_type_name(key)} {_shown(key)}")
        if item is not None and not isinstance(item, str):
            raise TypeError(
                f"{where}: {name}[{_shown(key)}] must be str or None, got {_type_name(item)} {_shown(item)}"
            )
    return dict(value)


def validate_fields(where: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check scope arguments and return them normalised; ``None`` values mean "absent" and are dropped.

    Raises ``TypeError`` for an unknown field or a wrong type and ``ValueError`` for a bad value,
    each naming the field, so that a mistake surfaces where the scope is declared.
    """
    # Fast path, for the common scope: strings, and property dicts of strings (copied: the
    # caller may change its dict later). Without properties `fields` is returned as is, so a
    # caller passing a mapping it may change later must pass a copy.
    copied: dict[str, Any] | None = None
    for name, value in fields.items():
        if type(value) is str:
            if name not in _STR_FIELDS:
                break
        elif type(value) is dict and value and name in _PROPS_FIELDS:
            for key, item in value.items():
                if type(key) is not str or (type(item) is not str and item is not None):
                    break
            else:
                if copied is None:
                    copied = dict(fields)
                copied[name] = value.copy()
                continue
            break
        else:
            break
    else:
        return fields if copied is None else copied  # type: ignore[return-value]
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        kind = _FIELD_KINDS.get(name)
        if kind is None:
            raise _unknown_field(where, name)
        if value is None:
            continue
        if kind is STR or kind is LAZY_STR:
            if not isinstance(value, str) and not (kind is LAZY_STR and isinstance(value, Deferred)):
                raise TypeError(f"{where}: {name} must be str, got {_type_name(value)} {_shown(value)}")
        elif kind is INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{where}: {name} must be int, got {_type_name(value)} {_shown(value)}")
            if not 0 <= value <= _MAX_INT:  # Pay-i stores a 64-bit signed integer
                raise ValueError(f"{where}: {name} must be from 0 to 2**63 - 1, got {_shown(value)}")
        elif kind is BOOL:
            if not isinstance(value, bool):
                raise TypeError(f"{where}: {name} must be bool, got {_type_name(value)} {_shown(value)}")
        elif kind is IDS:
            value = _check_ids(where, name, value)
        else:
            value = _check_props(where, name, value)
        clean[name] = value
    return clean


class TrackFields(TypedDict, total=False):
    """The arguments of `track()` and `track_context()`; all optional.

    Static, for type checkers; tests/test_field_table.py keeps it in step with the field table.
    """

    use_case_name: str | None
    use_case_id: str | None
    use_case_version: int | None
    use_case_step: str | None
    use_case_properties: dict[str, str | None] | None
    limit_ids: list[str] | None
    user_id: str | Deferred | None
    account_name: str | Deferred | None
    request_properties: dict[str, str | None] | None
    price_as_category: str | None
    price_as_resource: str | None
    resource_scope: str | None
    proxy: bool | None
    log_prompt_and_response: bool | None
