"""Reading the ledger: usage per group and tokens over time, for the report and the usage page.

Grouping runs in Python (SQLite has no percentiles) over the few columns it needs, read from
a read-only connection, so a report never blocks or changes the writers.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from .schema import Price, connect, estimate_cost, format_timestamp, parse_timestamp, price_key

__all__ = [
    "DEFAULT_BY",
    "GROUP_KEYS",
    "Bucket",
    "GroupUsage",
    "LedgerNotFound",
    "ReportError",
    "Usage",
    "parse_by",
    "parse_since",
    "read_usage",
]

# --by names -> their column.
GROUP_KEYS: Final[dict[str, str]] = {
    "account_name": "account_name",
    "user_id": "user_id",
    "use_case_name": "use_case_name",
    "use_case_step": "use_case_step",
    "use_case_version": "use_case_version",
    "model": "model",
    "category": "category",
    "resource_scope": "resource_scope",
}
DEFAULT_BY: Final = ("account_name", "user_id", "use_case_name", "model")


class ReportError(ValueError):
    """A report cannot be made: bad options, or no readable ledger."""


class LedgerNotFound(ReportError):
    pass


@dataclass
class GroupUsage:
    """One group's usage. Token sums count only calls whose usage is known (`unknown_usage` the rest)."""

    key: tuple[str | None, ...]
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unknown_usage: int = 0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    # An estimate, from the price table: None when no call of the group had a known price.
    estimated_cost_usd: float | None = None
    priced_calls: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Bucket:
    """Tokens of the calls that started in [start, start + width)."""

    start: datetime
    input_tokens: int
    output_tokens: int
    calls: int


@dataclass(frozen=True)
class Usage:
    db: str
    by: tuple[str, ...]
    since: datetime | None
    groups: list[GroupUsage]  # sorted by tokens, most first
    total: GroupUsage
    buckets: list[Bucket]  # oldest first; empty without calls
    bucket_width: timedelta


def parse_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """'account_name,user_id' (or a list) -> validated group keys; '' groups everything together."""
    names = text.split(",") if isinstance(text, str) else list(text)
    keys = tuple(name.strip() for name in names if name.strip())
    for key in keys:
        if key not in GROUP_KEYS:
            raise ReportError(f"--by: unknown group {key!r}; choose from {', '.join(GROUP_KEYS)}")
    if len(set(keys)) != len(keys):
        raise ReportError(f"--by: a group is named twice in {text!r}")
    return keys


_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """'24h', '30m', '7d', '2w', '90s' ago, or an ISO date/time (naive: UTC) -> an aware UTC datetime."""
    if text is None or isinstance(text, datetime):
        if isinstance(text, datetime) and text.tzinfo is None:
            return text.replace(tzinfo=timezone.utc)
        return text
    match = _AGO.match(text)
    if match:
        ago = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        return (now or datetime.now(timezone.utc)) - ago
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"--since: {text!r} is neither a duration ('24h', '7d', '30m') nor an ISO date ('2025-01-31')"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _bucket_width(first: datetime, last: datetime) -> timedelta:
    span = (last - first).total_seconds()
    for width in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if span / width <= 48:
            return timedelta(seconds=width)
    return timedelta(days=30)


def _floor(moment: datetime, width: timedelta) -> datetime:
    seconds = width.total_seconds()
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, timezone.utc)


def _open(db: str) -> sqlite3.Connection:
    if not os.path.exists(db):
        raise LedgerNotFound(f"no ledger at {db} (has a tracked call been made with the ledger on?)")
    try:
        conn = connect(db, busy_timeout=5.0, read_only=True)
        conn.execute("SELECT 1 FROM calls LIMIT 1")
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read the ledger {db}: {exc}") from None
    return conn


_COLUMNS: Final = (
    "timestamp",
    "failed",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "model",
    "price_as_resource",
)


def read_usage(
    db: str,
    *,
    by: Iterable[str] = DEFAULT_BY,
    since: datetime | None = None,
    prices: Mapping[str, Price] | None = None,
) -> Usage:
    """Usage per group of the calls since `since`, from the ledger file `db`.

    A call's cost is estimated with `prices` when they price its model, else taken from what
    the writer estimated with the prices configured then; groups without any price show none.
    """
    keys = parse_by(list(by))
    since = parse_since(since)
    rows = _select(db, [*_COLUMNS, *(GROUP_KEYS[k] for k in keys)], since)
    groups, total, per_bucket = _tally(rows, prices or {})
    for group in (*groups, total):
        group.latencies.sort()
        group.p50_latency_ms = percentile(group.latencies, 50)
        group.p95_latency_ms = percentile(group.latencies, 95)
    ordered = sorted(groups, key=lambda g: (-g.tokens, -g.calls, tuple((k is None, k or "") for k in g.key)))
    buckets, width = _buckets(per_bucket, since)
    return Usage(
        db=db, by=keys, since=since, groups=ordered, total=total, buckets=buckets, bucket_width=width
    )


def _select(db: str, columns: Sequence[str], since: datetime | None) -> list[tuple[Any, ...]]:
    """`columns` of the calls since `since` in the ledger `db`, oldest first."""
    sql = f"SELECT {', '.join(columns)} FROM calls"
    params: list[str] = []
    if since is not None:
        sql += " WHERE timestamp >= ?"
        params.append(format_timestamp(since))
    sql += " ORDER BY timestamp"
    conn = _open(db)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read the ledger {db}: {exc}") from None
    finally:
        conn.close()


def _tally(
    rows: list[tuple[Any, ...]], prices: Mapping[str, Price]
) -> tuple[list[GroupUsage], GroupUsage, list[tuple[datetime, int, int]]]:
    """The rows (`_COLUMNS`, then the group keys) summed per group and in total, and each call's
    (time, input tokens, output tokens) for the buckets."""
    groups: dict[tuple[str | None, ...], GroupUsage] = {}
    total = GroupUsage(key=())
    per_bucket: list[tuple[datetime, int, int]] = []
    n = len(_COLUMNS)
    for row in rows:
        stamp, failed, latency, input_tokens, output_tokens, stored_cost, model, price_as = row[:n]
        key = tuple(None if v is None else str(v) for v in row[n:])
        group = groups.get(key)
        if group is None:
            group = groups[key] = GroupUsage(key=key)
        cost = estimate_cost(prices, price_key(model, price_as), input_tokens, output_tokens)
        if cost is None:
            cost = stored_cost
        for target in (group, total):
            target.calls += 1
            target.errors += 1 if failed else 0
            if input_tokens is None and output_tokens is None:
                target.unknown_usage += 1
            target.input_tokens += input_tokens or 0
            target.output_tokens += output_tokens or 0
            if latency is not None:
                target.latencies.append(float(latency))
            if cost is not None:
                target.priced_calls += 1
                target.estimated_cost_usd = (target.estimated_cost_usd or 0.0) + cost
        per_bucket.append((parse_timestamp(stamp), input_tokens or 0, output_tokens or 0))
    return list(groups.values()), total, per_bucket


def _buckets(
    points: list[tuple[datetime, int, int]], since: datetime | None
) -> tuple[list[Bucket], timedelta]:
    if not points:
        return [], timedelta(hours=1)
    first = since if since is not None and since < points[0][0] else points[0][0]
    last = points[-1][0]
    width = _bucket_width(first, last)
    start = _floor(first, width)
    count = int((last - start) / width) + 1
    sums = [[0, 0, 0] for _ in range(count)]
    for moment, input_tokens, output_tokens in points:
        index = min(int((moment - start) / width), count - 1)
        sums[index][0] += input_tokens
        sums[index][1] += output_tokens
        sums[index][2] += 1
    return [Bucket(start + i * width, s[0], s[1], s[2]) for i, s in enumerate(sums)], width
