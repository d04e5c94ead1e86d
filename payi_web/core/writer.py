"""`BackgroundWriter`: the machinery a sink uses to do its work off the request path.

`record()` (on the calling thread) only puts an item in a bounded in-memory queue. Worker
threads, started lazily in each process (more while a backlog lasts, up to `max_workers`;
extra ones leave after `idle_timeout` idle), hand batches to the sink's `_handle()`, its own
job, which settles each item: done, lost, or put back to be tried again. One `ProcessState`
holds what belongs to a process: after `fork()` the child starts afresh, and what the parent's
workers used is kept alive, never touched. `flush()` waits for what was queued before it;
`close()` lets the workers finish what is held; at exit (a `multiprocessing` child's too)
every writer flushes. Nothing raises into the caller: a refused item is counted.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from . import lifecycle
from .log import warn_once

__all__ = ["BackgroundWriter", "ProcessState", "Queued"]

T = TypeVar("T")
Queued = tuple[int, T]  # (sequence number, item): flush() waits for the numbers queued before it


# What workers used before a fork (connections, clients), in the child: never touched again.
_abandoned: list[object] = []


@dataclass(eq=False)
class _Waiter:
    """A `flush()` waiting for every item queued before it (`seq <= target`) to be settled."""

    target: int
    remaining: int
    lost: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class ProcessState(Generic[T]):
    """What a writer holds in one process: fresh at creation and in a forked child."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[Queued[T]] = deque()
        self.seq = 0  # the last sequence number given
        self.in_flight = 0  # items taken by a worker, not settled yet
        self.workers = 0  # worker threads alive (or being started)
        self.idle = 0  # workers waiting for work
        self.worker_ids: set[int] = set()
        self.gathering_since: float | None = None  # when the oldest item of the next batch was queued
        self.waiters: list[_Waiter] = []
        # Items lost (given up, failed) while no flush() waited for them: the next flush() says so.
        self.lost_unreported = 0
        self.dropped = 0  # items refused: the queue full, the writer closed, or exit came first
        self.stopped = threading.Event()  # after close(): the last worker has finished


class BackgroundWriter(Generic[T]):
    """The queue, the workers, flush and close of a sink; subclasses do the work in `_handle()`.

    `linger` (seconds) lets a batch gather after its first item (less if it fills up, a flush
    waits or the writer closes); `batch_size` bounds one `_handle()` call.
    """

    thread_name: ClassVar[str] = "payi-writer"
    # Items in flight may come back to the queue (a retry): they count toward `max_queue` and as waiting.
    requeues: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_queue: int,
        max_workers: int = 1,
        batch_size: int = 1,
        linger: float = 0.0,
        idle_timeout: float = 30.0,
        exit_timeout: float = 10.0,
    ) -> None:
        self.max_queue = max_queue
        self.max_workers = max_workers
        self.batch_size = batch_size
        self.linger = linger
        self.idle_timeout = idle_timeout
        self.exit_timeout = exit_timeout
        self._closing = False
        self._state: ProcessState[T] = ProcessState()
        self._reset()
        lifecycle.register(self)

    # -- what subclasses do --------------------------------------------------------------------

    def _reset(self) -> None:
        """The subclass's own state for this process: at creation and in a forked child."""

    def _inherited(self) -> object | None:
        """What this process's workers used that a forked child must never use or close (kept alive)."""
        return None

    def _handle(self, batch: list[Queued[T]]) -> None:
        """On a worker, unlocked: do the work, then settle each item (`_settled`, `_requeue`)."""
        raise NotImplementedError

    def _delay(self, now: float) -> float | None:
        """Under the lock, items waiting: seconds before a worker may take one (None: until notified)."""
        return 0.0

    def _may_grow(self) -> bool:
        """Under the lock: whether more workers may start now (below `max_workers`)."""
        return True

    def _on_take(self, batch: list[Queued[T]]) -> None:
        """Under the lock, as a worker takes `batch`."""

    def _on_flush(self) -> None:
        """Under the lock, as a flush() starts waiting: it asks for everything now."""

    def _on_drop(self, dropped: int) -> None:
        """Unlocked: an item was refused; `dropped` so far in this process."""

    def _cannot_start(self) -> None:
        """Unlocked: no worker could start (interpreter shutdown) and none runs."""
        self._drop_queued()

    def _finished(self) -> None:
        """Once the workers of a closed writer have stopped (on the last one, or in `close()`)."""

    def _busy(self) -> bool:
        state = self._state
        return state.pid == os.getpid() and bool(state.workers or state.queue)

    def _at_exit(self, deadline: float) -> None:
        """At interpreter exit: finish what is held by `deadline` (time.monotonic())."""
        self.flush(max(0.0, deadline - time.monotonic()))

    # -- the calling thread --------------------------------------------------------------------

    def _current(self) -> ProcessState[T]:
        state = self._state
        if state.pid != os.getpid():  # forked by something os.register_at_fork does not see
            self._after_fork()
            state = self._state
        return state

    def _after_fork(self) -> None:
        inherited = self._inherited()
        if inherited is not None:
            _abandoned.append(inherited)  # kept alive: never used, nor closed, in this process
        self._state = ProcessState()
        if self._closing:  # closed before the fork: nothing to stop in this process
            self._state.stopped.set()
        self._reset()

    def _put(self, item: T) -> None:
        """Queue `item` for the workers; never blocks, never raises."""
        state = self._current()
        start = False
        with state.cond:
            if self._closing or self._waiting(state) >= self.max_queue:
                state.dropped += 1
                dropped = state.dropped
            else:
                dropped = 0
                state.seq += 1
                state.queue.append((state.seq, item))
                queued = len(state.queue)
                if queued == 1:
                    state.gathering_since = time.monotonic()
                if state.idle:
                    if queued == 1 or queued >= self.batch_size:  # else it is gathering a batch
                        state.cond.notify()
                elif state.workers == 0 or self._may_start(state):
                    state.workers += 1
                    start = True
        if dropped:
            self._on_drop(dropped)
        elif start:
            self._start_worker(state)

    def _may_start(self, state: ProcessState[T]) -> bool:
        """Under the lock: whether a backlog starts one more worker."""
        return state.workers < self.max_workers and self._may_grow()

    def _waiting(self, state: ProcessState[T]) -> int:
        """Items waiting for a worker (with `requeues`, those in flight too)."""
        return len(state.queue) + (state.in_flight if self.requeues else 0)

    # -- control -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Finish what is queued now; True when all of it was settled within `timeout` seconds and
        no item queued since the previous flush was lost. After `close()`, waits for the workers
        to stop too."""
        state = self._current()
        if threading.get_ident() in state.worker_ids:
            return False  # a worker waiting for itself
        deadline = None if timeout is None else time.monotonic() + timeout
        waiter = None
        start = False
        with state.cond:
            lost_before, state.lost_unreported = state.lost_unreported, 0
            pending = len(state.queue) + state.in_flight
            if pending:
                waiter = _Waiter(state.seq, pending)
                state.waiters.append(waiter)
                self._on_flush()
                state.cond.notify_all()
                start = state.workers == 0
                if start:
                    state.workers = 1
        if start:
            self._start_worker(state)
        if waiter is not None and not waiter.done.wait(timeout):
            with state.cond:
                if waiter in state.waiters:
                    state.waiters.remove(waiter)
            return False
        if self._closing:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not state.stopped.wait(left):
                return False
        return not (lost_before or (waiter is not None and waiter.lost))

    def close(self, timeout: float | None = 0.0) -> bool:
        """Take no more items; the workers finish what is held, then stop. Waits up to `timeout`
        seconds for that (0: not at all; `flush()` or interpreter exit waits for it later).
        True when everything was settled in time and nothing lost since the previous flush."""
        state = self._current()
        with state.cond:
            self._closing = True
            state.cond.notify_all()
            idle_process = state.workers == 0
            if timeout == 0:
                nothing_held = not (state.queue or state.in_flight or state.lost_unreported)
        if idle_process and not state.stopped.is_set():
            self._stop(state)
        if timeout == 0:  # flush() would report (and so forget) a loss that a later flush must see
            return nothing_held and state.stopped.is_set()
        return self.flush(timeout)

    def _stop(self, state: ProcessState[T]) -> None:
        self._drop_queued()  # queued by no worker: none could start
        self._finished()
        lifecycle.unregister(self)
        state.stopped.set()

    # -- the workers ---------------------------------------------------------------------------

    def _start_worker(self, state: ProcessState[T]) -> None:
        """Start a worker thread; `state.workers` was counted up for it already."""
        thread = threading.Thread(target=self._run, args=(state,), name=self.thread_name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # e.g. "can't create new thread at interpreter shutdown"
            with state.cond:
                state.workers -= 1
                alone = state.workers == 0
            if alone:
                self._cannot_start()
            return
        lifecycle.ensure_exit_flush()

    def _run(self, state: ProcessState[T]) -> None:
        with state.cond:
            state.worker_ids.add(threading.get_ident())
        last = False
        try:
            while True:
                with state.cond:
                    batch = self._next_batch(state)
                    if batch is None:
                        return
                    grow = bool(state.queue) and state.idle == 0 and self._may_start(state)
                    if grow:
                        state.workers += 1
                if grow:
                    self._start_worker(state)
                try:
                    self._handle(batch)
                except Exception:  # a bug here must not end the worker
                    warn_once(
                        f"writer:{self.thread_name}", "payi_web: %s failed", self.thread_name, exc_info=True
                    )
        finally:
            with state.cond:
                state.worker_ids.discard(threading.get_ident())
                if self._state is state:
                    state.workers -= 1
                    last = self._closing and state.workers == 0 and not state.queue
            if last:
                self._stop(state)

    def _next_batch(self, state: ProcessState[T]) -> list[Queued[T]] | None:
        """The next batch to handle, waiting for one; None: this worker leaves."""
        idle_since = time.monotonic()
        while True:
            if self._state is not state:  # this process forked: a stale thread object (never runs)
                return None
            now = time.monotonic()
            wait: float | None = None
            if state.queue:
                wait = self._gathering(state, now)
                if wait == 0:
                    wait = self._delay(now)
                if wait == 0:
                    return self._take(state)
            elif self._closing:
                return None
            elif state.workers > 1:
                wait = self.idle_timeout - (now - idle_since)
                if wait <= 0:
                    return None
            state.idle += 1
            try:
                state.cond.wait(wait)
            finally:
                state.idle -= 1

    def _gathering(self, state: ProcessState[T], now: float) -> float:
        """Seconds the next batch may still gather (0: take it now)."""
        if not self.linger or len(state.queue) >= self.batch_size or state.waiters or self._closing:
            return 0.0
        since = now if state.gathering_since is None else state.gathering_since
        return max(0.0, since + self.linger - now)

    def _take(self, state: ProcessState[T]) -> list[Queued[T]]:
        # A batch never goes past a flush's last item, so that a loss after it never fails that flush.
        first = state.queue[0][0]
        size = min(self.batch_size, len(state.queue))
        for waiter in state.waiters:
            if waiter.target >= first:
                size = min(size, waiter.target - first + 1)
        batch = [state.queue.popleft() for _ in range(size)]
        state.in_flight += size
        if not state.queue:
            state.gathering_since = None
        self._on_take(batch)
        return batch

    def _settled(self, seq: int, *, lost: bool) -> None:
        """Under the lock: the item `seq` a worker took is done (`lost`: failed, given up)."""
        self._state.in_flight -= 1
        self._answer_waiters(seq, lost)

    def _requeue(self, queued: Queued[T]) -> None:
        """Under the lock: an item a worker took goes back, at the end of the queue, to be tried again."""
        state = self._state
        state.in_flight -= 1
        state.queue.append(queued)

    def _answer_waiters(self, seq: int, lost: bool) -> None:
        state = self._state
        waited = False
        for waiter in list(state.waiters):
            if seq <= waiter.target:
                waited = True
                waiter.lost = waiter.lost or lost
                waiter.remaining -= 1
                if waiter.remaining <= 0:
                    waiter.done.set()
                    state.waiters.remove(waiter)
        if lost and not waited:
            state.lost_unreported += 1

    def _drop_queued(self) -> None:
        """Drop (and count) every item still queued: no worker is left to handle them."""
        state = self._state
        with state.cond:
            dropped = list(state.queue)
            state.queue.clear()
            state.dropped += len(dropped)
            for seq, _item in dropped:
                self._answer_waiters(seq, lost=False)  # dropped, like a refused record: not a failure
            total = state.dropped
        if dropped:
            self._on_drop(total)
