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

import os
import random
import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from operator import attrgetter
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from ._fields import FIELD_NAMES, Deferred

__all__ = ["TrackingContext", "get_context"]

Properties = dict[str, "str | None"]


class TrackingContext(BaseModel):
    """The effective tracking context at one point of the program, as `get_context()` returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    use_case_name: str | None = None
    use_case_id: str | None = None
    use_case_version: int | None = None
    use_case_step: str | None = None
    use_case_properties: dict[str, str | None] | None = None
    limit_ids: tuple[str, ...] | None = None
    user_id: str | None = None
    account_name: str | None = None
    request_properties: dict[str, str | None] | None = None
    price_as_category: str | None = None
    price_as_resource: str | None = None
    resource_scope: str | None = None
    proxy: bool | None = None
    log_prompt_and_response: bool | None = None


assert tuple(TrackingContext.model_fields) == FIELD_NAMES

_id_lock = threading.Lock()
_resolve_lock = threading.Lock()
# Use case instance ids: random, not secret. A private generator seeded from the OS (and reseeded
# in a forked child, so that workers never share ids) spares uuid4() its system call per id,
# which hands the GIL over in a busy threaded server; the app's own `random` seeding is untouched.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


# A random (version 4, RFC 4122 variant) UUID's bits, set on 128 random bits.
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def _uuid4() -> str:
    """`str(uuid.UUID(int=<random>, version=4))`, without the UUID object (a third of the cost)."""
    h = "%032x" % (_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class LazyId:
    """A use case instance id generated on first use.

    `uuid4()` costs several microseconds; most scopes never make a GenAI call, so the id is
    drawn only when a header or `get_context()` needs it. Frames that inherit the instance
    share this object, hence the same id.
    """

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: str | None = None

    def get(self) -> str:
        value = self._value
        if value is None:
            with _id_lock:  # two threads sharing one scope must agree on its id
                if self._value is None:
                    self._value = _uuid4()
                value = self._value
        return value


class Props:
    """A property dict that is never mutated, with its encodings computed once and shared by inheritors."""

    __slots__ = ("data", "encoded")

    def __init__(self, data: Properties) -> None:
        self.data = data
        self.encoded: dict[bool, str] = {}


class Frame:
    """One scope's effective context.

    Entering a scope only records its parent and arguments (`Frame.child`); the fields are
    derived on first use (`resolved()`), since most scopes make no GenAI call and the entry sits
    on every request's path. Once resolved, a frame never changes, apart from its caches.
    """

    __slots__ = (
        "_args",
        "account_name",
        "headers",
        "limit_ids",
        "log_prompt_and_response",
        "owner",
        "parent",
        "price_as_category",
        "price_as_resource",
        "proxy",
        "request_properties",
        "resource_scope",
        "shared_snapshot",
        "token",
        "use_case_id",
        "use_case_name",
        "use_case_properties",
        "use_case_step",
        "use_case_version",
        "user_id",
        "wire",
    )

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
    # The contextvar token of the entry that made this frame current (track_context's exit uses it).
    token: Token[Frame | None] | None
    # Caches: the headers by proxy mode (None until asked for), and the snapshot that call records share.
    headers: dict[bool, tuple[dict[str, str], Mapping[str, str]]] | None
    shared_snapshot: TrackingContext | None
    # The instrumented clients' cache: the API key it was made with, the encoded header entries,
    # and the headers as records hold them.
    wire: tuple[str | None, tuple[tuple[bytes, bytes, bytes], ...], Mapping[str, str]] | None
    # The track_context() object that entered this frame, if any (its exit finds its own frame).
    owner: object
    parent: Frame | None
    # The scope's arguments until its fields are derived from them and the parent's.
    _args: Mapping[str, Any] | None

    @staticmethod
    def child(parent: Frame, args: Mapping[str, Any], owner: object = None) -> Frame:
        """A scope's frame, its fields to be derived from `parent` and `args` on first use."""
        frame = Frame.__new__(Frame)
        frame.parent = parent
        frame._args = args
        frame.owner = owner
        frame.token = None
        return frame

    def resolved(self) -> Frame:
        """This frame with its fields derived (once; thread-safe, so all threads agree on its ids)."""
        if self._args is not None:
            _resolve_chain(self)
        return self

    def resolved_use_case_id(self) -> str | None:
        value = self.use_case_id
        return value.get() if isinstance(value, LazyId) else value

    def resolved_user_id(self) -> str | None:
        value = self.user_id
        return value.get() if isinstance(value, Deferred) else value

    def resolved_account_name(self) -> str | None:
        value = self.account_name
        return value.get() if isinstance(value, Deferred) else value

    def has_unresolved(self) -> bool:
        """Whether a deferred user id or account name is still to be resolved (`aresolve` has work)."""
        user, account = self.user_id, self.account_name
        return (isinstance(user, Deferred) and not user.settled) or (
            isinstance(account, Deferred) and not account.settled
        )

    async def aresolve(self) -> None:
        """Resolve deferred values the async way (a resolver may need the event loop's own path)."""
        for value in (self.user_id, self.account_name):
            if isinstance(value, Deferred):
                await value.aget()

    def record_snapshot(self) -> TrackingContext:
        """The snapshot that call records share: made once per frame (records are read, not changed)."""
        snapshot = self.shared_snapshot
        if snapshot is None:
            snapshot = self.shared_snapshot = self.snapshot()
        return snapshot

    def snapshot(self) -> TrackingContext:
        uc_props = self.use_case_properties
        req_props = self.request_properties
        return TrackingContext.model_construct(
            use_case_name=self.use_case_name,
            use_case_id=self.resolved_use_case_id(),
            use_case_version=self.use_case_version,
            use_case_step=self.use_case_step,
            use_case_properties=dict(uc_props.data) if uc_props is not None else None,
            limit_ids=self.limit_ids,
            user_id=self.resolved_user_id(),
            account_name=self.resolved_account_name(),
            request_properties=dict(req_props.data) if req_props is not None else None,
            price_as_category=self.price_as_category,
            price_as_resource=self.price_as_resource,
            resource_scope=self.resource_scope,
            proxy=self.proxy,
            log_prompt_and_response=self.log_prompt_and_response,
        )


def _empty_frame() -> Frame:
    frame = Frame.__new__(Frame)
    for name in FIELD_NAMES:
        setattr(frame, name, None)
    frame.token = None
    frame.owner = None
    frame.parent = None
    frame._args = None
    frame.headers = None
    frame.shared_snapshot = None
    frame.wire = None
    return frame


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


def _props(value: Properties, parent: Props | None) -> Props | None:
    if not value:
        return None  # {} blocks inheritance
    if parent is None:
        return Props(dict(value))
    merged = dict(parent.data)  # parent's key order kept, child's values win
    merged.update(value)
    return Props(merged)


def derive(parent: Frame, args: Mapping[str, Any]) -> Frame:
    """The effective context of a scope given validated arguments `args` and its parent's frame."""
    frame = Frame.__new__(Frame)
    frame.token = None
    frame.owner = None
    frame.parent = None
    frame._args = None
    _fill(frame, parent.resolved(), args)
    return frame


# Every field of a frame, in the order `_fill` assigns them.
_inherited: Final = attrgetter(*FIELD_NAMES)
_LATEST_WINS: Final = frozenset(
    ("user_id", "account_name", "price_as_category", "price_as_resource", "resource_scope")
)
_USE_CASE_ARGS: Final = frozenset(
    ("use_case_name", "use_case_id", "use_case_version", "use_case_step", "use_case_properties")
)


def _fill(frame: Frame, parent: Frame, args: Mapping[str, Any]) -> None:
    frame.headers = None
    frame.shared_snapshot = None
    frame.wire = None
    # Everything inherited first (read in one C call); then each argument given (most scopes give one or two).
    (
        frame.use_case_name,
        frame.use_case_id,
        frame.use_case_version,
        frame.use_case_step,
        frame.use_case_properties,
        frame.limit_ids,
        frame.user_id,
        frame.account_name,
        frame.request_properties,
        frame.price_as_category,
        frame.price_as_resource,
        frame.resource_scope,
        frame.proxy,
        frame.log_prompt_and_response,
    ) = _inherited(parent)
    use_case = False
    for name, value in args.items():
        if value is None:
            continue
        if name in _LATEST_WINS:  # "" blocks inheritance
            setattr(frame, name, value or None)
        elif name == "request_properties":
            frame.request_properties = _props(value, parent.request_properties)
        elif name in _USE_CASE_ARGS:
            use_case = True
        elif name == "limit_ids":
            parent_ids = parent.limit_ids
            if not value:
                frame.limit_ids = None  # [] blocks inheritance
            else:
                # Deterministic union: the parent's ids first, then the new ones, no duplicates.
                frame.limit_ids = tuple(dict.fromkeys(parent_ids + value if parent_ids else value))
        else:  # proxy, log_prompt_and_response: False is a value
            setattr(frame, name, value)
    if use_case:
        _fill_use_case(frame, parent, args)


def _fill_use_case(frame: Frame, parent: Frame, args: Mapping[str, Any]) -> None:
    get = args.get
    name = get("use_case_name")
    parent_name = parent.use_case_name
    if name is None and parent_name:
        name = parent_name
        default_id = parent.use_case_id
    elif name and name == parent_name:
        default_id = parent.use_case_id
    elif name:
        default_id = LazyId()
    else:
        # No use case at all ("" blocks; or neither scope names one): the other use case args are ignored.
        frame.use_case_name = frame.use_case_id = frame.use_case_version = None
        frame.use_case_step = frame.use_case_properties = None
        return
    frame.use_case_name = name
    use_case_id = get("use_case_id")
    frame.use_case_id = default_id if use_case_id is None else (use_case_id or None)
    version = get("use_case_version")
    if version is not None:
        frame.use_case_version = version
    step = get("use_case_step")
    if step is not None:
        frame.use_case_step = step or None
    properties = get("use_case_properties")
    if properties is not None:
        frame.use_case_properties = _props(properties, parent.use_case_properties)


EMPTY_FRAME = _empty_frame()

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
