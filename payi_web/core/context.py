"""The effective tracking context: immutable frames, their inheritance rules and where they live.

A frame is the effective context of one scope. Each scope derives a new frame from the frame
around it and the arguments it was given, following Pay-i's SDK rules exactly (singletons
"latest wins", limit ids unioned, property dicts merged, an empty value blocks inheritance, a
new use case name starts a new instance id). The current frame lives in a `ContextVar`, so every
thread and every asyncio task sees only its own scopes; the root frame (the application-wide
defaults) is a plain module global, so it applies in every thread, including ones a web server
starts before or after `configure()`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, Final

from .context_model import TrackingContext
from .deferred import Deferred
from .field_table import BY_NAME, FIELD_NAMES, FIELDS, LAZY_STR, USE_CASE_FIELDS, Rule

__all__ = ["TrackingContext", "get_context"]

Properties = dict[str, "str | None"]

_id_lock = threading.Lock()
_resolve_lock = threading.Lock()


class LazyId:
    """A use case instance id generated on first use.

    Most scopes never make a GenAI call, so the id is drawn only when a header or
    `get_context()` needs it. Frames that inherit the instance share this object, hence the same id.
    """

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: str | None = None

    def get(self) -> str:
        value = self._value
        if value is None:
            with _id_lock:  # two threads sharing one scope must agree on its id
                if self._value is None:
                    self._value = str(uuid.uuid4())
                value = self._value
        return value


class Props:
    """A property dict that is never mutated, with its encodings computed once and shared by inheritors."""

    __slots__ = ("data", "encoded")

    def __init__(self, data: Properties) -> None:
        self.data = data
        self.encoded: dict[bool, str] = {}


# The fields a Deferred may stand for (resolved on first use, or by `aresolve()`).
_DEFERRABLE: Final = tuple(spec.name for spec in FIELDS if spec.kind is LAZY_STR)


class Frame:
    """One scope's effective context.

    Entering a scope only records its parent and arguments (`Frame(parent, args)`); the fields
    are derived on first use (`resolved()`), since most scopes make no GenAI call and the entry
    sits on every request's path. Once resolved, a frame never changes, apart from its caches.
    """

    # A slot per field of the field table, then the frame's own state.
    __slots__ = (*FIELD_NAMES, "_args", "headers", "owner", "parent", "shared_snapshot", "token")

    # The fields, as a resolved frame holds them (static, for type checkers; tests/test_field_table.py
    # checks them against the field table).
    use_case_name: str | None
    use_case_id: str | LazyId | None
    use_case_version: int | None
    use_case_step: str | None
    use_case_properties: Props | None
    limit_ids: tuple[str, ...] | None
    user_id: str | Deferred | None
    account_name: str | Deferred | None
    request_properties: Props | None
    price_as_category: str | None
    price_as_resource: str | None
    resource_scope: str | None
    proxy: bool | None
    log_prompt_and_response: bool | None
    # The scope's arguments until its fields are derived from them and the parent's.
    _args: Mapping[str, Any] | None
    # headers.py's cache: the frame's headers by proxy mode, as built and as a read-only view
    # (None until asked for).
    headers: dict[bool, tuple[dict[str, str], Mapping[str, str]]] | None
    # The track_context() object that entered this frame, if any (its exit finds its own frame).
    owner: object
    parent: Frame | None
    # The snapshot that call records share (None until a record asks for it).
    shared_snapshot: TrackingContext | None
    # The contextvar token of the entry that made this frame current (track_context's exit uses it).
    token: Token[Frame | None] | None

    def __init__(self, parent: Frame | None, args: Mapping[str, Any] | None, owner: object = None) -> None:
        """A scope's frame, its fields to be derived from `parent`'s and from `args` on first use.

        A frame without `args` is resolved already: its fields are the caller's to set.
        """
        self.parent, self._args, self.owner = parent, args, owner
        self.token = self.headers = self.shared_snapshot = None

    @classmethod
    def empty(cls) -> Frame:
        """A resolved frame with every field unset."""
        frame = cls(None, None)
        for name in FIELD_NAMES:
            setattr(frame, name, None)
        return frame

    def resolved(self) -> Frame:
        """This frame with its fields derived (once; thread-safe, so all threads agree on its ids)."""
        if self._args is not None:
            _resolve_chain(self)
        return self

    def has_unresolved(self) -> bool:
        """Whether a deferred user id or account name is still to be resolved (`aresolve` has work)."""
        for name in _DEFERRABLE:
            value = getattr(self, name)
            if isinstance(value, Deferred) and not value.settled:
                return True
        return False

    async def aresolve(self) -> None:
        """Resolve deferred values the async way (a resolver may need the event loop's own path)."""
        for name in _DEFERRABLE:
            value = getattr(self, name)
            if isinstance(value, Deferred):
                await value.aget()

    def record_snapshot(self) -> TrackingContext:
        """The snapshot that call records share: made once per frame (records are read, not changed)."""
        snapshot = self.shared_snapshot
        if snapshot is None:
            snapshot = self.shared_snapshot = self.snapshot()
        return snapshot

    def snapshot(self) -> TrackingContext:
        """The fields as users see them: ids drawn, deferred values resolved, property dicts copied."""
        return TrackingContext.model_construct(**{name: _public(getattr(self, name)) for name in FIELD_NAMES})


def _public(value: Any) -> Any:
    if isinstance(value, Props):
        return dict(value.data)
    if isinstance(value, (LazyId, Deferred)):
        return value.get()
    return value


def _resolve_chain(frame: Frame) -> None:
    """Derive the fields of `frame` and of its unresolved ancestors, outermost first, under one lock."""
    pending = []
    while frame._args is not None:  # a frame with arguments pending always has a parent
        pending.append(frame)
        frame = frame.parent  # type: ignore[assignment]
    with _resolve_lock:
        for frame in reversed(pending):
            args = frame._args
            if args is not None:  # another thread may have derived it meanwhile
                _fill(frame, frame.parent, args)  # type: ignore[arg-type]
                frame._args = None


def derive(parent: Frame, args: Mapping[str, Any]) -> Frame:
    """The effective context of a scope given validated arguments `args` and its parent's frame."""
    frame = Frame(None, None)
    _fill(frame, parent.resolved(), args)
    return frame


def _fill(frame: Frame, parent: Frame, args: Mapping[str, Any]) -> None:
    """Set the fields of `frame` from its parent's and its arguments (README "Inheritance rules")."""
    for name in FIELD_NAMES:  # everything inherited first; then each argument given
        setattr(frame, name, getattr(parent, name))
    use_case = False
    for name, value in args.items():
        if value is None:
            continue
        spec = BY_NAME[name]
        if spec.use_case:
            use_case = True  # the use case fields follow its name: set together, below
        else:
            setattr(frame, name, _combined(spec.rule, value, getattr(parent, name)))
    if use_case:
        _fill_use_case(frame, parent, args)


def _fill_use_case(frame: Frame, parent: Frame, args: Mapping[str, Any]) -> None:
    name = args.get("use_case_name")
    parent_name = parent.use_case_name
    instance: str | LazyId | None
    if name is None and parent_name:
        name, instance = parent_name, parent.use_case_id
    elif name and name == parent_name:
        instance = parent.use_case_id
    elif name:
        instance = LazyId()  # a new use case: a new instance
    else:
        # No use case at all ("" blocks; or neither scope names one): the other use case args are ignored.
        for spec in USE_CASE_FIELDS:
            setattr(frame, spec.name, None)
        return
    frame.use_case_name = name
    frame.use_case_id = instance
    for spec in USE_CASE_FIELDS:
        value = args.get(spec.name)
        if value is not None and spec.rule is not Rule.NEW_INSTANCE:
            setattr(frame, spec.name, _combined(spec.rule, value, getattr(parent, spec.name)))


def _combined(rule: Rule, value: Any, inherited: Any) -> Any:
    """A scope's value of a field given `value` (not None), its parent's being `inherited`."""
    if rule is Rule.LATEST:
        return None if value == "" else value  # "" blocks inheritance; False and 0 are values
    if rule is Rule.UNION:
        if not value:
            return None  # [] blocks inheritance
        # Deterministic: the parent's ids first, then the new ones, no duplicates.
        return tuple(dict.fromkeys(inherited + value if inherited else value))
    if rule is Rule.MERGE:
        if not value:
            return None  # {} blocks inheritance
        if inherited is None:
            return Props(dict(value))
        merged = dict(inherited.data)  # the parent's key order kept, these values winning
        merged.update(value)
        return Props(merged)
    raise AssertionError(f"{rule} is the use case name's rule, applied by _fill_use_case")


EMPTY_FRAME: Final = Frame.empty()

# The root frame: application-wide defaults, replaced whole by `configure()`.
_root: Frame = EMPTY_FRAME

# The innermost active scope of this thread / task; None means "at the root".
current_var: ContextVar[Frame | None] = ContextVar("payi_web.current", default=None)


def set_root(frame: Frame) -> None:
    global _root
    _root = frame


def root() -> Frame:
    return _root


def current_scope() -> Frame:
    """The innermost scope's frame, possibly not yet resolved."""
    frame = current_var.get()
    return _root if frame is None else frame


def current_frame() -> Frame:
    """The effective context here and now, resolved."""
    frame = current_var.get()
    if frame is None:
        return _root
    return frame if frame._args is None else frame.resolved()


def get_context() -> TrackingContext:
    """The effective tracking context here and now (an immutable snapshot)."""
    return current_frame().snapshot()
