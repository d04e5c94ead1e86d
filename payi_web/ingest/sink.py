"""`IngestSink`: every call record reported to Pay-i (`POST /api/v1/ingest`), off the request path.

`record()` (on the calling thread) only appends to a bounded queue. Sender threads, started
lazily in each process (the first on the first record, more while a backlog lasts, up to
`concurrency`), build each event and POST it; extra senders leave after `idle_timeout` idle.

Retries: connection errors, timeouts, 408, 429 and 5xx put the record back in the queue and
pause delivery with an exponential backoff (with jitter, capped at `max_backoff`, at least
Retry-After); while Pay-i is failing a single record at a time probes it, and the first
success resumes full concurrency. A record is given up after `max_attempts` failed attempts,
counting only the attempts made while Pay-i was otherwise answering: an outage, however long,
costs a waiting record nothing. Other 4xx answers are not retried: the record is counted as
failed and Pay-i's message logged (never the API key).

Nothing here ever raises into the caller. Undeliverable records (queue full, retries
exhausted, rejected) are counted (`stats`); the local ledger, when enabled, holds every call
anyway (it is a sink of its own), so they are never lost from it.

After `fork()` the child starts afresh (an empty queue, no senders, its own HTTP client);
the parent's queue stays the parent's. On `flush()` and at interpreter exit what is queued is
delivered; at exit and after `close()` without waiting for a backoff: one last attempt each.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from types import ModuleType
from typing import Any, Final

from .._version import __version__
from ..core.log import warn_once
from ..core.records import CallRecord
from ..core.writer import BackgroundWriter, Queued
from .event import IngestEvent, build_event, wanted
from .http import BYPASS, Outcome, load_http, outcome_of_error, outcome_of_response
from .options import DeliveryOptions, IngestStats

__all__ = ["DeliveryOptions", "IngestSink", "IngestStats"]

logger = logging.getLogger("payi_web.ingest")

INGEST_PATH: Final = "/api/v1/ingest"
_LOG_INTERVAL: Final = 60.0  # seconds between two logs of the same kind of failure


class _Delivery:
    """One record on its way: its event (built once, on a sender) and its failed attempts."""

    __slots__ = ("attempts", "event", "healthy", "record")

    def __init__(self, record: CallRecord) -> None:
        self.record = record
        self.event: IngestEvent | None = None
        self.attempts = 0
        self.healthy = True  # Pay-i was answering when a sender took it (else: a probe)


class IngestSink(BackgroundWriter[_Delivery]):
    """A `payi_web` sink that reports every call record (made without the proxy) to Pay-i.

    `flush()` is True when what was queued before it was delivered in time, and no record queued
    since the previous flush was given up (refused, attempts exhausted) before it.
    """

    thread_name = "payi-ingest-sender"
    requeues = True  # a failed attempt puts the record back

    def __init__(self, api_key: str, base_url: str, options: DeliveryOptions | None = None) -> None:
        if not api_key:
            raise ValueError("IngestSink: an API key is required")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + INGEST_PATH
        self.options = options = options or DeliveryOptions()
        self._http: ModuleType = load_http()  # raises IngestUnavailable (an ImportError) now, not later
        super().__init__(
            max_queue=options.max_queue,
            max_workers=options.concurrency,
            idle_timeout=options.idle_timeout,
            exit_timeout=options.exit_timeout,
        )

    def __repr__(self) -> str:
        return f"IngestSink({self.url!r})"

    def matches(self, api_key: str, base_url: str, options: DeliveryOptions) -> bool:
        return (api_key, base_url.rstrip("/"), options) == (self._api_key, self.base_url, self.options)

    def _reset(self) -> None:
        self._failures = 0  # consecutive failed attempts: Pay-i is failing while > 0
        self._backoff_until = 0.0  # time.monotonic() before which no attempt is made
        self._outage_since = 0.0
        self._hurry = False  # closing or exiting: no backoff, one last attempt per record
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._sent = self._retried = self._failed = 0
        self._last_error: str | None = None
        self._last_logged: dict[str, float] = {}
        self._logs: deque[tuple[int, str, tuple[object, ...]]] = deque()  # to log once unlocked
        self._suppressed: dict[str, int] = {}

    def _inherited(self) -> Any:
        return self._client  # the parent's connections: never used (or closed) in a child

    # -- the calling thread ----------------------------------------------------------------

    def record(self, call: CallRecord) -> None:
        """Queue `call` for delivery; never blocks on the network, never raises."""
        if wanted(call):
            self._put(_Delivery(call))

    def _on_drop(self, dropped: int) -> None:
        reason = "the sink is closed" if self._closing else f"the queue is full ({self.options.max_queue})"
        with self._state.cond:
            self._log(
                "dropped",
                "payi_web: a call record was not queued for Pay-i because %s; calls go on, drops are "
                "counted (%d so far, payi_web.ingest.stats())",
                reason,
                dropped,
            )
        self._emit_logs()

    # -- control ---------------------------------------------------------------------------

    @property
    def stats(self) -> IngestStats:
        state = self._current()
        return IngestStats(
            enabled=True,
            sent=self._sent,
            retried=self._retried,
            failed=self._failed,
            dropped=state.dropped,
            queued=self._waiting(state),
            last_error=self._last_error,
        )

    def _on_flush(self) -> None:
        self._backoff_until = 0.0  # an explicit flush tries now (one probe if Pay-i was failing)

    def close(self, timeout: float | None = 0.0) -> bool:
        """Stop taking records; deliver what is held in the background, one last attempt each (no
        backoff); wait up to `timeout` for that. True when everything was delivered in time."""
        state = self._current()
        with state.cond:
            self._hurry = True
        return super().close(timeout)

    def _at_exit(self, deadline: float) -> None:
        """At interpreter exit: deliver what is queued until `deadline`, one last attempt each."""
        state = self._state
        with state.cond:
            self._hurry = True
            state.cond.notify_all()
        if not self.flush(max(0.0, deadline - time.monotonic())):
            with state.cond:
                left = self._waiting(state)
                state.dropped += left
            if left:
                logger.warning(
                    "payi_web: %d call record(s) not delivered to Pay-i before exit in process %d (dropped)",
                    left,
                    os.getpid(),
                )
        if self._failed or state.dropped:
            logger.warning(
                "payi_web: Pay-i ingest in process %d: %d delivered, %d failed, %d dropped (last error: %s)",
                os.getpid(),
                self._sent,
                self._failed,
                state.dropped,
                self._last_error,
            )

    # -- the senders -----------------------------------------------------------------------

    def _cannot_start(self) -> None:
        """No thread can start (interpreter shutdown): deliver in this thread, one attempt each."""
        state = self._state
        deadline = time.monotonic() + self.options.exit_timeout
        with state.cond:
            self._hurry = True
        while time.monotonic() < deadline:
            with state.cond:
                if not state.queue:
                    return
                batch = self._take(state)
            for _seq, delivery in batch:
                delivery.healthy = False  # a last attempt, that Pay-i's health says nothing about
            self._handle(batch)

    def _may_grow(self) -> bool:
        return self._failures == 0  # while Pay-i is failing, no more senders

    def _delay(self, now: float) -> float | None:
        if self._hurry:
            return 0.0
        if now < self._backoff_until:
            return self._backoff_until - now
        if self._failures and self._state.in_flight:
            return None  # while Pay-i is failing, one probe at a time
        return 0.0

    def _on_take(self, batch: list[Queued[_Delivery]]) -> None:
        for _seq, delivery in batch:
            delivery.healthy = self._failures == 0

    def _handle(self, batch: list[Queued[_Delivery]]) -> None:
        for queued in batch:
            self._attempt(queued)

    def _attempt(self, queued: Queued[_Delivery]) -> None:
        delivery = queued[1]
        try:
            if delivery.event is None:
                delivery.event = build_event(delivery.record)
        except Exception:
            warn_once("ingest-build", "payi_web: could not build an ingest event", exc_info=True)
            outcome = Outcome(ok=False, error="could not build the ingest event")
        else:
            outcome = self._post(delivery.event)
        with self._state.cond:
            self._settle(queued, outcome)
        self._emit_logs()

    def _post(self, event: IngestEvent) -> Outcome:
        http = self._http
        try:
            client = self._http_client()
            response = client.post(
                self.url,
                content=event.body,
                headers={**event.headers, "xProxy-api-key": self._api_key},
                extensions=BYPASS,
            )
        except Exception as exc:
            return outcome_of_error(exc, http, self._api_key)
        return outcome_of_response(response, self._api_key)

    def _http_client(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    http = self._http
                    options = self.options
                    client = self._client = http.Client(
                        timeout=http.Timeout(options.timeout, connect=min(options.timeout, 5.0)),
                        limits=http.Limits(
                            max_connections=options.concurrency,
                            max_keepalive_connections=options.concurrency,
                        ),
                        headers={"user-agent": f"payi-web/{__version__}", "content-type": "application/json"},
                        follow_redirects=False,
                    )
        return client

    # -- outcomes (under the lock) ---------------------------------------------------------

    def _settle(self, queued: Queued[_Delivery], outcome: Outcome) -> None:
        seq, item = queued
        healthy = item.healthy
        if outcome.ok:
            self._sent += 1
            if self._failures:
                self._recovered()
            self._settled(seq, lost=False)
            return
        self._last_error = outcome.error
        if not outcome.retryable:
            if outcome.status is not None and self._failures:
                self._recovered()  # Pay-i answers: it is up, whatever it thought of this record
            self._failed += 1
            self._log(
                f"rejected:{outcome.status}",
                "payi_web: Pay-i did not accept a call record (%s); it is not retried (failed: %d)",
                outcome.error,
                self._failed,
            )
            self._settled(seq, lost=True)
            self._state.cond.notify_all()
            return
        if healthy:
            item.attempts += 1  # a failure while Pay-i answers others: the record's own budget
        if not healthy or self._failures == 0:  # concurrent failures at an outage's start count once
            self._failures += 1
        if self._failures == 1 and healthy:
            self._outage_since = time.monotonic()
        if self._hurry or item.attempts >= self.options.max_attempts:
            self._failed += 1
            self._log(
                "exhausted",
                "payi_web: a call record could not be delivered to Pay-i (%s) and is given up "
                "(failed: %d, payi_web.ingest.stats())",
                outcome.error,
                self._failed,
            )
            self._settled(seq, lost=True)
        else:
            self._retried += 1
            self._requeue(queued)  # at the back: every waiting record gets its turn to probe
            if self._failures == 1:
                self._log(
                    "retrying",
                    "payi_web: cannot deliver call records to Pay-i (%s); they wait in the queue and are "
                    "retried with backoff",
                    outcome.error,
                )
        self._backoff_until = max(self._backoff_until, time.monotonic() + self._backoff(outcome))
        self._state.cond.notify_all()

    def _backoff(self, outcome: Outcome) -> float:
        options = self.options
        exponent = min(self._failures - 1, 30)
        delay = min(options.max_backoff, options.initial_backoff * 2**exponent)
        delay = delay / 2 + random.uniform(0, delay / 2)  # jitter: processes don't retry in step
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, options.max_backoff))
        return float(delay)

    def _recovered(self) -> None:
        down = time.monotonic() - self._outage_since
        self._failures = 0
        self._backoff_until = 0.0
        self._state.cond.notify_all()  # full concurrency again
        self._last_logged.pop("retrying", None)  # the next outage is logged again
        message = "payi_web: delivering call records to Pay-i again (after %.1f s of failures)"
        self._logs.append((logging.INFO, message, (down,)))

    def _log(self, kind: str, message: str, *args: object) -> None:
        """Log `kind` at WARNING at most once a minute, saying how many were left out since.

        Called under the lock: the message is only kept, and logged by `_emit_logs()` after the
        lock is released (a logging handler must never run while the sink is locked)."""
        now = time.monotonic()
        last = self._last_logged.get(kind)
        if last is not None and now - last < _LOG_INTERVAL:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_logged[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d similar message(s) suppressed)"
            args = (*args, suppressed)
        self._logs.append((logging.WARNING, message, args))

    def _emit_logs(self) -> None:
        while self._logs:
            try:
                level, message, args = self._logs.popleft()
            except IndexError:
                return
            logger.log(level, message, *args)
