"""`LedgerSink`: every call record kept in an SQLite file, written off the request path.

`record()` (on the calling thread) only appends to a bounded in-memory queue. A background
writer thread, started lazily in each process on the first record, writes what has queued up
in batched transactions. The file is in WAL mode with a busy timeout, so the worker processes
of one app (gunicorn, uWSGI, several `runserver`s) can share it. After `fork()` the child starts
afresh: an empty queue, no writer, no inherited connection; its first record starts its own
writer. Whatever is queued is written on `flush()`, `close()` and normal interpreter exit.

Nothing here ever raises into the caller: a full queue drops the record, a locked, read-only
or corrupt file fails the batch; both are counted (`stats`) and logged once. A file deleted or
emptied while the app runs is noticed before the next batch, which goes to a new one (`file.py`).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .._exit import ExitHooks
from .._log import warn_once
from ..records import CallRecord
from .file import LedgerFile
from .schema import Price, Row, row_for

__all__ = ["DEFAULT_MAX_QUEUE", "LedgerSink", "LedgerStats"]

logger = logging.getLogger("payi_web.ledger")

DEFAULT_MAX_QUEUE: Final = 10_000
DEFAULT_BATCH_SIZE: Final = 500
DEFAULT_BUSY_TIMEOUT: Final = 5.0
DEFAULT_LINGER: Final = 0.1
EXIT_FLUSH_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class LedgerStats:
    """This process's counts since the sink was created (or since this process was forked)."""

    written: int  # rows committed to the file
    dropped: int  # records refused because the queue was full (or the sink closed)
    failed: int  # records whose batch could not be written (locked, read-only, corrupt file...)
    queued: int  # records waiting for the writer now


class _Marker:
    """Queued by `flush()`: the writer sets `done` once everything queued before it is handled, and
    `failed` to the failure count at that point."""

    __slots__ = ("done", "failed")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.failed = 0


class _Stop:
    """Queued by `close()`: the writer exits after handling everything before it."""


_Item = CallRecord | _Marker | _Stop


class LedgerSink:
    """A `payi_web` sink that stores every call record in the SQLite file at `path`.

    `max_queue` bounds the records held in memory per process; `batch_size` bounds one
    transaction; `linger` (seconds) is how long the writer lets records gather before writing
    them in one transaction (less if a batch fills up, or on `flush()`), so that a busy app pays
    one commit, and one thread switch, per batch rather than per call; `busy_timeout`
    (seconds) is how long a write waits for another process's lock;
    `prices` ({model: (input, output) USD per million tokens}) fills the estimated cost column.
    The file is created on the first write, not here.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        linger: float = DEFAULT_LINGER,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("LedgerSink: max_queue and batch_size must be at least 1")
        if linger < 0 or busy_timeout < 0:
            raise ValueError("LedgerSink: linger and busy_timeout must not be negative")
        self.path = os.path.abspath(os.fspath(path))
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.busy_timeout = busy_timeout
        self.linger = linger
        self.prices: Mapping[str, Price] = dict(prices or {})
        self._closed = False
        self._init_process_state()
        _live.add(self)

    def __repr__(self) -> str:
        return f"LedgerSink({self.path!r})"

    def _init_process_state(self) -> None:
        """Everything that belongs to one process: fresh at creation and in a forked child."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: deque[_Item] = deque()
        self._wakeup = threading.Event()  # records are queued
        self._urgent = threading.Event()  # write now: a full batch, a flush or a close
        self._thread: threading.Thread | None = None
        self._stopping = False  # close() has queued the writer's stop
        self._file = LedgerFile(self.path, busy_timeout=self.busy_timeout)
        self._written = 0
        self._dropped = 0
        self._drops_logged = 0
        self._failed = 0  # counted by the writer thread only
        self._failed_reported = 0  # the failures a flush() has already answered False for

    def _after_fork(self) -> None:
        # The parent's queue is the parent's to write; its connection must never be used (or
        # closed) here, per SQLite's rules for fork(), so it is kept alive and forgotten.
        _abandoned.append(self._file)
        self._init_process_state()

    # -- the calling thread ----------------------------------------------------------------

    def record(self, call: CallRecord) -> None:
        """Queue `call` for the writer; never blocks, never raises."""
        if self._pid != os.getpid():
            self._after_fork()
        queue = self._queue
        queued = len(queue)
        if queued >= self.max_queue or self._closed:
            self._drop()
            return
        queue.append(call)
        if self._thread is None and not self._start():
            return
        wakeup = self._wakeup
        if not wakeup.is_set():
            wakeup.set()
        if queued >= self.batch_size and not self._urgent.is_set():
            self._urgent.set()

    def _drop(self, count: int = 1) -> None:
        with self._lock:
            self._dropped += count
            dropped = self._dropped
        reason = "the sink is closed" if self._closed else f"its queue is full ({self.max_queue} records)"
        warn_once(
            f"ledger-dropped:{self.path}",
            "payi_web: the ledger %s dropped a call record because %s; calls go on, drops are counted "
            "(%d so far, see LedgerSink.stats) and their total is logged at exit",
            self.path,
            reason,
            dropped,
        )

    def _start(self) -> bool:
        with self._lock:
            if self._thread is not None:
                return True
            thread = threading.Thread(
                target=self._run,
                args=(self._queue, self._wakeup, self._urgent),
                name="payi-ledger-writer",
                daemon=True,  # never holds up exit; the atexit hook flushes it first
            )
            started = False
            if not self._closed:  # else a record raced close(): no writer is started again for it
                try:
                    thread.start()
                except RuntimeError:  # e.g. "can't create new thread at interpreter shutdown"
                    pass
                else:
                    self._thread = thread
                    started = True
            if not started:
                lost = sum(1 for item in self._queue if isinstance(item, CallRecord))
                self._queue.clear()
        if not started:
            self._drop(lost)
            return False
        _exit_hooks.ensure()
        return True

    # -- control ------------------------------------------------------------------------------

    @property
    def stats(self) -> LedgerStats:
        queued = sum(1 for item in list(self._queue) if isinstance(item, CallRecord))
        return LedgerStats(written=self._written, dropped=self._dropped, failed=self._failed, queued=queued)

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far; True when it was all written within `timeout` seconds
        and no record failed since the previous flush (one that was dropped was never queued).
        After `close()`, waits for the writer to finish."""
        if self._pid != os.getpid():
            self._after_fork()
        thread = self._thread
        if thread is None:
            return not self._queue and self._nothing_failed_since_last_flush(self._failed)
        if thread is threading.current_thread():
            return False
        if self._stopping:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._finish()
            return self._nothing_failed_since_last_flush(self._failed)
        if not thread.is_alive():
            return False
        marker = _Marker()
        self._queue.append(marker)
        self._urgent.set()
        self._wakeup.set()
        return marker.done.wait(timeout) and self._nothing_failed_since_last_flush(marker.failed)

    def _nothing_failed_since_last_flush(self, failed: int) -> bool:
        """Whether `failed` (a count the writer reached) adds no failure a flush has already reported.

        A failure between two flushes makes the next one False, though it happened before that
        flush was called: the caller of flush() is asking whether everything so far was written.
        """
        with self._lock:
            new = failed > self._failed_reported
            self._failed_reported = max(self._failed_reported, failed)
        return not new

    def close(self, timeout: float | None = EXIT_FLUSH_TIMEOUT) -> bool:
        """Stop taking records (later ones are dropped, and counted); the writer writes what is
        queued, then stops and closes the file. Waits up to `timeout` seconds for that: with 0 not
        at all, as `configure()` does, since the file may be locked for seconds; the writer then
        finishes in the background, and `flush()` or interpreter exit waits for it. True when
        everything was written in time."""
        self._closed = True
        if self._pid != os.getpid():
            self._after_fork()
        if self._thread is None:
            self._finish()
        elif not self._stopping:
            self._stopping = True
            self._queue.append(_Stop())
            self._urgent.set()
            self._wakeup.set()
        return self.flush(timeout)

    def _finish(self) -> None:
        """Once the writer has stopped (or never started) after close(): the sink is done."""
        with self._lock:
            self._thread = None
            stranded = sum(1 for item in self._queue if isinstance(item, CallRecord))
            self._queue.clear()
        if stranded:  # queued by a record() racing close(), after the writer's last look
            self._drop(stranded)
        _live.discard(self)
        self._log_drops()

    def _log_drops(self) -> None:
        with self._lock:
            dropped, logged = self._dropped, self._drops_logged
            self._drops_logged = dropped
        if dropped > logged:
            logger.warning(
                "payi_web: the ledger %s dropped %d call record(s) in process %d (queue full or closed)",
                self.path,
                dropped,
                os.getpid(),
            )

    # -- the writer thread --------------------------------------------------------------------

    def _run(self, queue: deque[_Item], wakeup: threading.Event, urgent: threading.Event) -> None:
        while True:
            wakeup.wait()
            if self.linger and not urgent.is_set():
                urgent.wait(self.linger)  # let a batch gather
            urgent.clear()
            wakeup.clear()  # before draining: a record appended after this sets it again
            try:
                if not self._drain(queue):
                    break
            except Exception:  # a bug here must not end the writer
                warn_once(f"ledger-writer:{self.path}", "payi_web: the ledger writer failed", exc_info=True)
        self._file.close()

    def _drain(self, queue: deque[_Item]) -> bool:
        """Write everything queued; False once a stop was reached (what follows it is handled too)."""
        batch: list[CallRecord] = []
        stop = False
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, CallRecord):
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._write(batch)
                    batch = []
                continue
            if batch:
                self._write(batch)
                batch = []
            if isinstance(item, _Marker):
                item.failed = self._failed
                item.done.set()
            else:
                stop = True
        if batch:
            self._write(batch)
        return not stop

    def _rows(self, batch: list[CallRecord]) -> list[Row]:
        """The rows of `batch`; a record that has none (not a CallRecord's shape) is counted as failed
        alone, so that it never costs the other calls of its batch."""
        rows: list[Row] = []
        for call in batch:
            try:
                rows.append(row_for(call, self.prices))
            except Exception as exc:
                self._failed += 1
                warn_once(
                    f"ledger-unstorable:{self.path}",
                    "payi_web: the ledger %s cannot store a call record (%s: %s); it is counted as failed "
                    "(LedgerSink.stats), the other records are written; further ones are not logged",
                    self.path,
                    type(exc).__name__,
                    exc,
                )
        return rows

    def _write(self, batch: list[CallRecord]) -> None:
        rows = self._rows(batch)
        if not rows:
            return
        try:
            self._file.insert(rows)
        except Exception as exc:
            self._failed += len(rows)
            self._file.close()  # reopened for the next batch: the file may have been fixed
            logged = warn_once(
                f"ledger-failed:{self.path}",
                "payi_web: cannot write the ledger %s (%s: %s); calls go on, the %d call record(s) of this "
                "batch are counted as failed (LedgerSink.stats); further failures are not logged",
                self.path,
                type(exc).__name__,
                exc,
                len(rows),
            )
            if not logged:
                logger.debug("payi_web: ledger write failed again: %s", exc)
        else:
            self._written += len(rows)


# Every sink alive in this process, for the fork and exit hooks.
_live: weakref.WeakSet[LedgerSink] = weakref.WeakSet()
# Connections inherited through fork(), in their LedgerFile: never touched again.
_abandoned: list[LedgerFile] = []


def _after_fork_in_child() -> None:
    for sink in list(_live):
        sink._after_fork()


def _flush_all_at_exit() -> None:
    for sink in list(_live):
        if sink._pid == os.getpid() and sink._thread is not None:
            if not sink.flush(EXIT_FLUSH_TIMEOUT):
                logger.warning("payi_web: the ledger %s could not write everything before exit", sink.path)
            sink._log_drops()


_exit_hooks = ExitHooks(_flush_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
