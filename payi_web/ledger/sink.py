"""`LedgerSink`: every call record kept in an SQLite file, written off the request path.

`record()` (on the calling thread) only appends to a bounded in-memory queue; one background
writer thread per process (`BackgroundWriter`, started lazily on the first record, afresh in a
forked child, flushed at exit) writes what has queued up in batched transactions. The file is
in WAL mode with a busy timeout, so the worker processes of one app (gunicorn, uWSGI, several
`runserver`s) can share it; a forked child never uses its parent's connection. Whatever is
queued is written on `flush()`, `close()` and normal interpreter exit.

Nothing here ever raises into the caller: a full queue drops the record, a locked, read-only
or corrupt file fails the batch; both are counted (`stats`) and logged once. A file deleted or
emptied while the app runs is noticed before the next batch, which goes to a new one (`file.py`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..core.log import warn_once
from ..core.records import CallRecord
from ..core.writer import BackgroundWriter, Queued
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


class LedgerSink(BackgroundWriter[CallRecord]):
    """A `payi_web` sink that stores every call record in the SQLite file at `path`.

    `max_queue` bounds the records held in memory per process; `batch_size` bounds one
    transaction; `linger` (seconds) is how long the writer lets records gather before writing
    them in one transaction (less if a batch fills up, or on `flush()`), so that a busy app pays
    one commit, and one thread switch, per batch rather than per call; `busy_timeout`
    (seconds) is how long a write waits for another process's lock;
    `prices` ({model: (input, output) USD per million tokens}) fills the estimated cost column.
    The file is created on the first write, not here.
    """

    thread_name = "payi-ledger-writer"

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
        self.busy_timeout = busy_timeout
        self.prices: Mapping[str, Price] = dict(prices or {})
        super().__init__(
            max_queue=max_queue, batch_size=batch_size, linger=linger, exit_timeout=EXIT_FLUSH_TIMEOUT
        )

    def __repr__(self) -> str:
        return f"LedgerSink({self.path!r})"

    def _reset(self) -> None:
        self._file = LedgerFile(self.path, busy_timeout=self.busy_timeout)
        self._written = 0
        self._failed = 0  # counted by the writer thread only
        self._drops_logged = 0
        self._drops_lock = threading.Lock()

    def _inherited(self) -> LedgerFile:
        # Per SQLite's rules for fork(), the parent's connection is never used (or closed) here.
        return self._file

    # -- the calling thread ----------------------------------------------------------------

    def record(self, call: CallRecord) -> None:
        """Queue `call` for the writer; never blocks, never raises."""
        self._put(call)

    def _on_drop(self, dropped: int) -> None:
        reason = "the sink is closed" if self._closing else f"its queue is full ({self.max_queue} records)"
        warn_once(
            f"ledger-dropped:{self.path}",
            "payi_web: the ledger %s dropped a call record because %s; calls go on, drops are counted "
            "(%d so far, see LedgerSink.stats) and their total is logged at exit",
            self.path,
            reason,
            dropped,
        )

    # -- control ------------------------------------------------------------------------------

    @property
    def stats(self) -> LedgerStats:
        state = self._current()
        return LedgerStats(
            written=self._written, dropped=state.dropped, failed=self._failed, queued=self._waiting(state)
        )

    def close(self, timeout: float | None = EXIT_FLUSH_TIMEOUT) -> bool:
        """Stop taking records (later ones are dropped, and counted); the writer writes what is
        queued, then stops and closes the file. Waits up to `timeout` seconds for that: with 0 not
        at all, as `configure()` does, since the file may be locked for seconds; the writer then
        finishes in the background, and `flush()` or interpreter exit waits for it. True when
        everything was written in time."""
        return super().close(timeout)

    def _finished(self) -> None:
        self._file.close()
        self._log_drops()

    def _at_exit(self, deadline: float) -> None:
        if not self.flush(max(0.0, deadline - time.monotonic())):
            logger.warning("payi_web: the ledger %s could not write everything before exit", self.path)
        self._log_drops()

    def _log_drops(self) -> None:
        with self._drops_lock:
            dropped, logged = self._state.dropped, self._drops_logged
            self._drops_logged = dropped
        if dropped > logged:
            logger.warning(
                "payi_web: the ledger %s dropped %d call record(s) in process %d (queue full or closed)",
                self.path,
                dropped,
                os.getpid(),
            )

    # -- the writer thread --------------------------------------------------------------------

    def _handle(self, batch: list[Queued[CallRecord]]) -> None:
        failed = self._failed
        try:
            self._write([call for _seq, call in batch])
        finally:
            lost = self._failed > failed
            with self._state.cond:
                for seq, _call in batch:
                    self._settled(seq, lost=lost)

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
