"""The tracking-context fields and the validation of scope arguments.

Validation runs once per `@track` decoration and once per `track_context()` entry, so it is
hand-written (a dict lookup and an isinstance per argument) rather than a pydantic model:
it sits on the hot path and must cost well under a microsecond.
"""

from __future__ import annotations

import _thread
import asyncio
import reprlib
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypedDict

from ._log import warn_once

__all__ = ["FIELD_NAMES", "Deferred", "TrackFields", "validate_fields"]

# threading.RLock() is a Python function around this C type: one frame less per request.
_new_rlock: Final = getattr(_thread, "RLock", threading.RLock)

_STR: Final = "str"
_LAZY_STR: Final = "lazy-str"
_INT: Final = "int"
_BOOL: Final = "bool"
_IDS: Final = "ids"
_PROPS: Final = "props"
_MAX_INT: Final = 2**63 - 1

# Field name -> kind, in the order of the public `TrackingContext` model.
_FIELD_KINDS: Final[dict[str, str]] = {
    "use_case_name": _STR,
    "use_case_id": _STR,
    "use_case_version": _INT,
    "use_case_step": _STR,
    "use_case_properties": _PROPS,
    "limit_ids": _IDS,
    "user_id": _LAZY_STR,
    "account_name": _LAZY_STR,
    "request_properties": _PROPS,
    "price_as_category": _STR,
    "price_as_resource": _STR,
    "resource_scope": _STR,
    "proxy": _BOOL,
    "log_prompt_and_response": _BOOL,
}

FIELD_NAMES: Final[tuple[str, ...]] = tuple(_FIELD_KINDS)
_STR_FIELDS: Final = frozenset(name for name, kind in _FIELD_KINDS.items() if kind in (_STR, _LAZY_STR))
_PROPS_FIELDS: Final = frozenset(name for name, kind in _FIELD_KINDS.items() if kind is _PROPS)


class Deferred:
    """A `user_id` or `account_name` computed on first use, at most once, e.g. from the request's user.

    Framework layers seed a request's scope with these so that a request making no GenAI call
    costs no session or database query. A resolver that raises, or returns something other
    than a str or None, is logged once (with the traceback) and the field is left unset: the
    request and its GenAI calls go on. `aresolve`, when given, is used where the call runs on
    an event loop (e.g. Django's `request.auser()`).
    """

    __slots__ = (
        "_aresolve",
        "_done",
        "_lock",
        "_name",
        "_pending",
        "_pending_task",
        "_resolve",
        "_resolving",
        "_value",
    )

    def __init__(
        self,
        resolve: Callable[[], object],
        *,
        aresolve: Callable[[], Awaitable[object]] | None = None,
        name: str = "resolver",
    ) -> None:
        # Dropped once settled: they hold the request (its user, session, app context), which must
        # not outlive it in a frame that a streamed body, a record or a worker thread keeps.
        self._resolve: Callable[[], object] | None = resolve
        self._aresolve: Callable[[], Awaitable[object]] | None = aresolve
        self._name = name
        self._value: str | None = None
        self._done = False
        # Re-entrant: a resolver that reads the context in its own thread sees the field unset.
        self._lock = _new_rlock()
        self._resolving = False
        # The async resolution under way (awaited in `_pending_task`), which concurrent calls wait for.
        self._pending: asyncio.Future[None] | None = None
        self._pending_task: asyncio.Task[Any] | None = None

    @property
    def settled(self) -> bool:
        """Resolved (or failed): `get()` returns at once."""
        return self._done

    def __repr__(self) -> str:
        state = repr(self._value) if self._done else "unresolved"
        return f"Deferred({self._name}: {state})"

    def _settle(self, value: object) -> None:
        if value is not None and not isinstance(value, str):
            warn_once(
                f"resolver-type:{self._name}",
                "payi_web: %s returned %s, not str or None; the field is left unset",
                self._name,
                type(value).__name__,
            )
            value = None
        self._value = value or None
        self._done = True
        self._resolve = self._aresolve = None
        self._pending_task = None

    def _failed(self) -> None:
        warn_once(
            f"resolver:{self._name}",
            "payi_web: %s raised; the field is left unset",
            self._name,
            exc_info=True,
        )
        self._value = None
        self._done = True
        self._resolve = self._aresolve = None
        self._pending_task = None

    def get(self) -> str | None:
        if not self._done:
            with self._lock:
                if not self._done:
                    if self._resolving:
                        return None  # the resolver itself asked (e.g. via get_context()): not known yet
                    resolve = self._resolve
                    if resolve is None:  # settled meanwhile, by an async resolution
                        return self._value
                    self._resolving = True
                    try:
                        value = resolve()
                    except Exception:
                        if not self._done:
                            self._failed()
                    else:
                        if not self._done:
                            self._settle(value)
                    finally:
                        self._resolving = False
        return self._value

    async def aget(self) -> str | None:
        while not self._done:
            aresolve = self._aresolve
            if aresolve is None:
                return self.get()
            pending = self._pending
            if pending is None or pending.get_loop() is not asyncio.get_running_loop():
                return await self._aresolve_here(aresolve)
            resolver = self._pending_task
            if resolver is not None and resolver is asyncio.current_task():
                return None  # the resolver itself asked (e.g. via get_context()): not known yet
            # Another call of the request is resolving it: wait for that one, whatever its end
            # (if it was cancelled, the loop above resolves it here).
            await asyncio.wait((pending,))
        return self._value

    async def _aresolve_here(self, aresolve: Callable[[], Awaitable[object]]) -> str | None:
        # Awaited in place, not in a task of its own: a task and a shield cost two more turns of
        # the event loop on every request's first call. Concurrent calls wait on `_pending`.
        pending = self._pending = asyncio.get_running_loop().create_future()
        self._pending_task = asyncio.current_task()
        try:
            value = await aresolve()
        except Exception:
            if not self._done:
                self._failed()
        except BaseException:  # cancelled: a waiting call resolves it instead
            if self._pending is pending:
                self._pending = self._pending_task = None
            raise
        else:
            if not self._done:
                self._settle(value)
        finally:
            pending.set_result(None)
        return self._value


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
        if kind is _STR or kind is _LAZY_STR:
            if not isinstance(value, str) and not (kind is _LAZY_STR and isinstance(value, Deferred)):
                raise TypeError(f"{where}: {name} must be str, got {_type_name(value)} {_shown(value)}")
        elif kind is _INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{where}: {name} must be int, got {_type_name(value)} {_shown(value)}")
            if not 0 <= value <= _MAX_INT:  # Pay-i stores a 64-bit signed integer
                raise ValueError(f"{where}: {name} must be from 0 to 2**63 - 1, got {_shown(value)}")
        elif kind is _BOOL:
            if not isinstance(value, bool):
                raise TypeError(f"{where}: {name} must be bool, got {_type_name(value)} {_shown(value)}")
        elif kind is _IDS:
            value = _check_ids(where, name, value)
        else:
            value = _check_props(where, name, value)
        clean[name] = value
    return clean


class TrackFields(TypedDict, total=False):
    """The arguments of `track()` and `track_context()`; all optional."""

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
