"""What every tracked GenAI call leaves behind: an immutable record, and the sinks that receive it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

from .context import TrackingContext
from .log import warn_once

__all__ = [
    "CallRecord",
    "ClosableSink",
    "InstalledSink",
    "Sink",
    "Units",
    "add_sink",
    "flush",
    "remove_sink",
    "retire_sink",
]


class Units(NamedTuple):
    """Tokens of one Pay-i unit kind. `None` means unknown, which is not the same as 0.

    A named tuple: immutable, and built on every call's path for a fraction of a dataclass's cost.
    """

    input: int | None = None
    output: int | None = None


class CallRecord(NamedTuple):
    """One GenAI call made by an instrumented client, built when the call ends.

    Immutable; a named tuple because one is built on every call's path, several times faster
    than a frozen dataclass.
    """

    timestamp: datetime  # when the call started, UTC
    category: str  # Pay-i's provider category: "system.openai", "system.anthropic", ...
    resource: str | None  # the model, from the request body
    method: str
    url: str  # without the query string, which may hold secrets
    status: int | None  # the HTTP status; None when no response arrived
    latency_ms: float  # end to end, including the streamed body
    time_to_first_token_ms: float | None  # streams only
    response_id: str | None
    failed: bool
    streamed: bool
    proxied: bool  # sent to Pay-i (its proxy) with the Pay-i headers
    context: TrackingContext
    # By Pay-i unit kind: "text", "text_cache_read", "text_cache_write", "reasoning".
    # Empty when the usage is unknown (e.g. a stream abandoned before it arrived).
    units: Mapping[str, Units]
    # The call's Pay-i headers (the caller's explicit ones merged, the API key left out): sent on
    # the wire only when `proxied`; otherwise the attribution that ingest reports.
    headers: Mapping[str, str]

    @property
    def usage_known(self) -> bool:
        return bool(self.units)

    @property
    def input_tokens(self) -> int | None:
        """All input tokens (text and cache), or None when unknown."""
        return _total(self.units, "input")

    @property
    def output_tokens(self) -> int | None:
        """All output tokens (text and reasoning), or None when unknown."""
        return _total(self.units, "output")


def _total(units: Mapping[str, Units], side: str) -> int | None:
    if not units:
        return None
    total = 0
    for unit in units.values():
        count = getattr(unit, side)
        if count is None:  # not reported for this kind (e.g. reasoning has no input): adds nothing
            continue
        if type(count) is not int or count < 0:  # NaN, a float, a negative: the total is unknown too
            return None
        total += count
    return total


@runtime_checkable
class Sink(Protocol):
    """Receives every call record. `record` runs on the calling thread: it must only enqueue."""

    def record(self, call: CallRecord) -> None: ...

    def flush(self, timeout: float | None = None) -> bool:
        """Finish what is held; return whether all of it was written/delivered in time."""
        ...


_sinks: tuple[Sink, ...] = ()
# Sinks given no more records that still finish what they hold in the background; flush() waits
# for them too, until one of its flushes succeeds.
_retiring: tuple[Sink, ...] = ()
_retiring_lock = threading.Lock()


def add_sink(sink: Sink) -> None:
    """Register `sink` for every call record (once; adding it again does nothing)."""
    global _sinks
    if not isinstance(sink, Sink):
        raise TypeError(f"add_sink(): {sink!r} has no record()/flush() methods")
    if not any(s is sink for s in _sinks):
        _sinks = (*_sinks, sink)


def remove_sink(sink: Sink) -> None:
    global _sinks
    _sinks = tuple(s for s in _sinks if s is not sink)


def retire_sink(sink: Sink) -> None:
    """Give `sink` no more records, but keep it in `flush()` until a flush of it succeeds: for a sink
    closed without waiting (so that `configure()` never waits on a file or a network), whose
    records must still count as what `flush()` is asked to finish."""
    global _retiring
    remove_sink(sink)
    with _retiring_lock:
        if not any(s is sink for s in _retiring):
            _retiring = (*_retiring, sink)


def _retired(sink: Sink) -> None:
    global _retiring
    with _retiring_lock:
        _retiring = tuple(s for s in _retiring if s is not sink)


class ClosableSink(Sink, Protocol):
    def close(self, timeout: float | None = ...) -> bool:
        """Take no more records; finish what is held, waiting up to `timeout` seconds for it."""
        ...


S = TypeVar("S", bound=ClosableSink)


class InstalledSink(Generic[S]):
    """The one sink of its kind that `configure()` installs (the ledger's, the ingest one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sink: S | None = None

    def replace(self, make: Callable[[], S | None], keep: Callable[[S], bool] | None = None) -> S | None:
        """Install `make()` (None: none) unless `keep(current)`; return the sink installed.

        The sink replaced is retired: it takes no more records and finishes what it holds in the
        background (`flush()` waits for that), since configuration must never wait on a file or
        a network.
        """
        with self._lock:
            old = self.sink
            if old is not None and keep is not None and keep(old):
                return old
            new = make()
            if old is not None:
                retire_sink(old)
            if new is not None:
                add_sink(new)
            self.sink = new
        if old is not None:
            old.close(timeout=0)
        return new


def sinks() -> tuple[Sink, ...]:
    return _sinks


def emit(call: CallRecord) -> None:
    """Hand `call` to every sink; a failing sink is logged once and never reaches the caller."""
    for sink in _sinks:
        try:
            sink.record(call)
        except Exception:
            warn_once(
                f"sink:{type(sink).__qualname__}",
                "payi_web: sink %s failed to record a call; calls go on",
                type(sink).__qualname__,
                exc_info=True,
            )


def flush(timeout: float | None = None) -> bool:
    """Ask every sink to finish what it holds; True when all of it was written/delivered in time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    done = True
    retiring = _retiring
    for sink in (*_sinks, *retiring):
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            flushed = sink.flush(remaining)
            if flushed and any(s is sink for s in retiring):
                _retired(sink)
            done = flushed and done
        except Exception:
            warn_once(f"sink-flush:{type(sink).__qualname__}", "payi_web: sink flush failed", exc_info=True)
            done = False
    return done
