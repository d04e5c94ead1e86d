"""How an `IngestSink` delivers (`DeliveryOptions`), and what it counts (`IngestStats`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeliveryOptions", "IngestStats"]


@dataclass(frozen=True)
class DeliveryOptions:
    """How an `IngestSink` delivers. Seconds for every duration."""

    max_queue: int = 10_000  # records held per process; beyond it new records are dropped
    concurrency: int = 16  # sender threads (so POSTs in flight) per process, at most
    timeout: float = 10.0  # one POST, connection included
    initial_backoff: float = 0.5  # the first pause after a failure; doubles with each further one
    max_backoff: float = 10.0  # the longest pause (Retry-After included)
    max_attempts: int = 8  # failed attempts (while Pay-i answers others) before a record is given up
    exit_timeout: float = 5.0  # how long interpreter exit waits for the queue to be delivered
    idle_timeout: float = 30.0  # an extra sender idle this long leaves

    def __post_init__(self) -> None:
        for name in ("max_queue", "concurrency", "max_attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DeliveryOptions: {name} must be an int >= 1, got {value!r}")
        for name in ("timeout", "initial_backoff", "max_backoff", "exit_timeout", "idle_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"DeliveryOptions: {name} must be a number >= 0, got {value!r}")
        if self.timeout <= 0:
            raise ValueError("DeliveryOptions: timeout must be > 0")


@dataclass(frozen=True)
class IngestStats:
    """This process's counts since the sink was created (or since this process was forked)."""

    enabled: bool  # ingest mode is on (an API key is configured and proxy is not True)
    sent: int = 0  # events Pay-i accepted
    retried: int = 0  # attempts that failed and were scheduled again
    failed: int = 0  # records given up: rejected (4xx), or retries exhausted
    dropped: int = 0  # records never delivered: the queue was full, the sink closed, or exit came first
    queued: int = 0  # records waiting or in flight now
    last_error: str | None = None  # the latest failure, e.g. "HTTP 401: invalid_api_key: ..."
