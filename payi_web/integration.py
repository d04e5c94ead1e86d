"""The public extension interface: what an integration of payi-web with another library builds on.

An integration (a web framework, a task queue, a websocket layer) does four things, each with a
name here, so that it is one module on public ground:

- **derive** the frame of its unit of work (a request, a task, a message) from context fields,
  validated like `track_context()`'s, whose user id or account name may be `Deferred` (computed
  on first use, at most once): `scope_frame()`;
- **make it current** while the work runs: `use_frame()` for a block (`with` or `async with`),
  `run_in_frame()` for a call, `enter_frame()` / `exit_frame()` where the start and the end are
  two callbacks (a framework's before/after hooks);
- **bind what runs later** to it: `bind_iterator()` / `abind_iterator()` run each step of a body
  (a streamed response, a generator) with the frame current, whoever consumes it and whenever;
  `bind_result_type()` teaches `@track` that a function returning such an object keeps its scope;
- **declare itself**: a subclass of `Integration`, set up once (`setup()`), refused with
  `DidNotEnable` when its library is missing or too old.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from .core.context import EMPTY_FRAME, Frame, current_scope, derive
from .core.current import (
    FrameToken,
    abind_iterator,
    bind_iterator,
    enter_frame,
    exit_frame,
    is_bound,
    run_in_frame,
    use_frame,
)
from .core.fields import Deferred, validate_fields
from .core.log import warn_once
from .core.threads import binding_loop
from .core.tracking import bind_result_type, unbind_result_type

__all__ = [
    "Deferred",
    "DidNotEnable",
    "Frame",
    "FrameToken",
    "Integration",
    "abind_iterator",
    "bind_iterator",
    "bind_result_type",
    "bound_on_loop",
    "check_fields",
    "current_scope",
    "defaults_frame",
    "enabled_integrations",
    "enter_frame",
    "exit_frame",
    "is_bound",
    "resolve_deferred",
    "run_in_frame",
    "scope_frame",
    "unbind_result_type",
    "use_frame",
    "warn_once",
]


def check_fields(fields: Mapping[str, Any], *, where: str = "check_fields()") -> dict[str, Any]:
    """`fields`, validated and normalised like `track_context()`'s arguments (None values dropped):
    for an integration that takes fields where it is declared and derives frames from them later."""
    return dict(validate_fields(where, fields))


def scope_frame(
    fields: Mapping[str, Any], parent: Frame | None = None, *, where: str = "scope_frame()"
) -> Frame:
    """The frame of a scope with these context fields, derived from `parent` (default: the current scope).

    `fields` are validated like `track_context()`'s arguments (a `TypeError` or `ValueError`
    naming the field, and `where`); `user_id` and `account_name` may also be `Deferred`. The
    frame's fields are derived on first use, and nothing is current until it is entered.
    """
    return Frame(current_scope() if parent is None else parent, validate_fields(where, fields))


def defaults_frame(fields: Mapping[str, Any], *, where: str = "defaults_frame()") -> Frame:
    """A root frame of its own, holding only these fields (not the process root `configure()` sets):
    e.g. the defaults of one app among several in a process, for its requests' frames to derive from."""
    return derive(EMPTY_FRAME, validate_fields(where, fields))


def bound_on_loop() -> asyncio.AbstractEventLoop | None:
    """While a callable `bind_context()` bound runs: the event loop whose thread bound it (None:
    bound outside one). That code awaits this thread rather than blocking on it."""
    return binding_loop.get()


def resolve_deferred(frame: Frame) -> None:
    """Resolve now the `Deferred` user id and account name that `frame` has, e.g. while the request
    they read still exists (a streamed body produced after it ended)."""
    frame = frame.resolved()
    for value in (frame.user_id, frame.account_name):
        if isinstance(value, Deferred):
            value.get()


class DidNotEnable(Exception):
    """An integration cannot be set up in this process: its library is missing or too old."""


def _version_tuple(version: str) -> tuple[int, ...]:
    # "5.2.19" -> (5, 2, 19); "3.0rc1" -> (3, 0): pre-releases count as the release.
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


class Integration:
    """A library payi-web integrates with: subclass it, name the library, do the work in `setup_once()`.

        class CeleryIntegration(Integration):
            identifier = "celery"
            library = "celery"
            min_version = (5, 3)

            @classmethod
            def setup_once(cls) -> None: ...  # connect the task signals

        CeleryIntegration.setup()  # DidNotEnable if celery is missing or older than 5.3

    `setup()` is idempotent and thread-safe: `setup_once()` runs once per process until
    `teardown()` undoes it. The library's version is read from its distribution's metadata.
    """

    identifier: ClassVar[str]
    library: ClassVar[str]  # the module to import
    distribution: ClassVar[str | None] = None  # its distribution's name, when not `library`
    min_version: ClassVar[tuple[int, ...]] = ()

    _lock: ClassVar[threading.RLock] = threading.RLock()
    _enabled: ClassVar[dict[str, type[Integration]]] = {}

    @classmethod
    def setup_once(cls) -> None:
        """Connect to the library (signals, hooks, result types). Runs once per process."""

    @classmethod
    def teardown_once(cls) -> None:
        """Undo `setup_once()`."""

    @classmethod
    def library_version(cls) -> tuple[int, ...]:
        """The installed library's version; `DidNotEnable` if it is not installed."""
        try:
            importlib.import_module(cls.library)
            version = importlib.metadata.version(cls.distribution or cls.library)
        except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
            raise DidNotEnable(
                f"payi-web's {cls.identifier} integration needs {cls.library}: {exc}"
            ) from None
        return _version_tuple(version)

    @classmethod
    def setup(cls) -> None:
        """Check the library (`DidNotEnable` when missing or too old), then set up once."""
        with cls._lock:
            if cls._enabled.get(cls.identifier) is cls:
                return
            version = cls.library_version()
            if version < cls.min_version:
                needed = ".".join(map(str, cls.min_version))
                found = ".".join(map(str, version))
                raise DidNotEnable(
                    f"payi-web's {cls.identifier} integration needs {cls.library} >= {needed}, found {found}"
                )
            cls.setup_once()
            cls._enabled[cls.identifier] = cls

    @classmethod
    def teardown(cls) -> None:
        """Undo `setup()` (nothing if it is not set up); `setup()` may then run again."""
        with cls._lock:
            if cls._enabled.get(cls.identifier) is cls:
                cls.teardown_once()
                del cls._enabled[cls.identifier]

    @classmethod
    def is_set_up(cls) -> bool:
        return Integration._enabled.get(cls.identifier) is cls


def enabled_integrations() -> dict[str, type[Integration]]:
    """The integrations set up in this process, by identifier."""
    with Integration._lock:
        return dict(Integration._enabled)
