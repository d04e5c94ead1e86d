"""The ledger's SQLite schema, its migrations, and how one call record becomes one row.

The file holds two tables: `payi_schema` (one row per applied schema version, so a later
payi-web can migrate a file written by an earlier one) and `calls` (one row per GenAI call).
Every column but `id` and `timestamp` may be NULL: NULL means unknown or not given, which is
never the same as 0 or "".

`row_for` makes every value storable, so that one odd record never fails the batch it is written
in: a surrogate code point (a lone surrogate, e.g. from `json.loads('"\\ud800"')` on client
input), which UTF-8 cannot encode, becomes U+FFFD; an integer beyond SQLite's 64 bits, a token
count that is not a non-negative integer, and a NaN or infinite time are NULL (unknown).
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from ..core.field_table import BOOL, FIELDS, IDS, INT, LAZY_STR, PROPS, STR, Kind
from ..core.records import CallRecord, Units

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "Price",
    "Row",
    "connect",
    "estimate_cost",
    "format_timestamp",
    "insert_rows",
    "migrate",
    "parse_timestamp",
    "price_key",
    "row_for",
]

# (input, output) US dollars per million tokens.
Price = tuple[float, float]

SCHEMA_VERSION: Final = 1

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# SQLite's INTEGER is a signed 64-bit number; binding a larger Python int raises OverflowError.
_INTEGER_MAX: Final = 2**63 - 1
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _text(value: str | None) -> str | None:
    """`value` as UTF-8 can hold it: surrogate code points, which sqlite3 refuses to bind, as U+FFFD."""
    if value is None or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def _integer(value: int | None) -> int | None:
    """An integer SQLite can store; beyond 64 bits unknown (NULL) rather than a wrong, clamped number."""
    if isinstance(value, int) and -_INTEGER_MAX - 1 <= value <= _INTEGER_MAX:
        return value
    return None


def _real(value: float | None) -> float | None:
    """A finite number of milliseconds, or NULL: NaN or infinity measures nothing."""
    try:
        number = float(value)  # type: ignore[arg-type]  # None, or an int too large for a float
    except (TypeError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _count(value: int | None) -> int | None:
    """A token count: a non-negative integer SQLite can store; anything else unknown (NULL), never 0."""
    return value if type(value) is int and 0 <= value <= _INTEGER_MAX else None


def _json(value: object) -> str | None:
    return None if value is None else _text(_encode(value))


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _json_list(value: tuple[str, ...] | None) -> str | None:
    return None if value is None else _json(list(value))


# How a context field of each kind is stored: its SQL type, a note on it, and its snapshot value
# as SQLite stores it.
_STORED: Final[dict[Kind, tuple[str, str, Callable[[Any], object]]]] = {
    STR: ("TEXT", "", _text),
    LAZY_STR: ("TEXT", "", _text),
    INT: ("INTEGER", "", _integer),
    BOOL: ("INTEGER", "", _bool),
    IDS: ("TEXT", "JSON array", _json_list),
    PROPS: ("TEXT", "JSON object", _json),
}
# The context fields the ledger stores, and how, in COLUMNS order.
_LEDGER_FIELDS: Final = tuple(spec for spec in FIELDS if spec.ledger_since is not None)
_STORE_FIELDS: Final = tuple((spec.name, _STORED[spec.kind][2]) for spec in _LEDGER_FIELDS)


Row = tuple[object, ...]


def _create_calls() -> str:
    """Version 1's `calls` table: the call's columns, the context fields' of version 1, the usage."""
    context = "".join(
        f"\n            {name} {sql}," + (f"  -- {note}" if note else "")
        for name, sql, note in _context_columns(1)
    )
    return f"""
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            timestamp TEXT NOT NULL,            -- call start, UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ'
            category TEXT,                      -- 'system.openai', 'system.anthropic', ...
            model TEXT,                         -- the resource, from the request body
            method TEXT,
            url TEXT,                           -- without the query string
            status INTEGER,                     -- HTTP status; NULL: no response arrived
            latency_ms REAL,
            time_to_first_token_ms REAL,        -- streams only
            streamed INTEGER,
            proxied INTEGER,
            failed INTEGER NOT NULL,
            response_id TEXT,{context}
            input_tokens INTEGER,               -- all input: text + cache read + cache write
            output_tokens INTEGER,              -- all output: text + reasoning
            text_input_tokens INTEGER,
            text_output_tokens INTEGER,
            cache_read_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            units TEXT,                         -- JSON: every unit kind as reported, {{}} when unknown
            estimated_cost_usd REAL             -- from the configured price table; NULL: no price known
        )
        """


def _context_columns(version: int) -> list[tuple[str, str, str]]:
    """(name, SQL type, note) of the context fields' columns that schema `version` added."""
    return [(spec.name, *_STORED[spec.kind][:2]) for spec in FIELDS if spec.ledger_since == version]


def _migration(version: int) -> tuple[str, ...]:
    """The statements that bring a file from the previous version to `version`.

    A context field added to the field table later (`ledger_since` of a new version) gets its
    column here, by ALTER TABLE: version 1's statements never change, for files made by it.
    """
    if version == 1:
        return (_create_calls(), "CREATE INDEX calls_timestamp ON calls (timestamp)")
    return tuple(f"ALTER TABLE calls ADD COLUMN {name} {sql}" for name, sql, _ in _context_columns(version))


# The columns `row_for` fills, in order.
COLUMNS: Final[tuple[str, ...]] = (
    "timestamp",
    "category",
    "model",
    "method",
    "url",
    "status",
    "latency_ms",
    "time_to_first_token_ms",
    "streamed",
    "proxied",
    "failed",
    "response_id",
    *(spec.name for spec in _LEDGER_FIELDS),
    "input_tokens",
    "output_tokens",
    "text_input_tokens",
    "text_output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "units",
    "estimated_cost_usd",
)

_ROW_PLACEHOLDERS: Final = f"({', '.join('?' * len(COLUMNS))})"
# Rows per INSERT statement: within SQLite's oldest default limit of 999 bound variables.
ROWS_PER_INSERT: Final = 999 // len(COLUMNS)


def insert_rows(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Insert `rows` with a few multi-row statements.

    The sqlite3 module releases and retakes the GIL around every statement step; with
    `executemany` that is once per row, and each retake competes with the request threads.
    A multi-row INSERT steps once per ROWS_PER_INSERT rows.
    """
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        sql = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES " + ", ".join(
            [_ROW_PLACEHOLDERS] * len(chunk)
        )
        conn.execute(sql, [value for row in chunk for value in row])


def connect(path: str, *, busy_timeout: float, read_only: bool = False) -> sqlite3.Connection:
    """A connection for this thread; the writer's is in WAL mode, so many processes can share the file.

    Opening is lazy in SQLite: a missing directory or a corrupt file shows up here or at the
    first statement, as `sqlite3.Error`.
    """
    if read_only:
        uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
    else:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses no committed data on an application crash, only on power loss.
            conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version: 0 for a new, empty file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'payi_schema'"
    ).fetchone()
    if not exists:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM payi_schema").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file to SCHEMA_VERSION in one transaction, safe against other processes; return its version.

    A file written by a newer payi-web (a higher version) is left as it is: its `calls` table
    keeps every column this version writes, so rows can still be added.
    """
    if schema_version(conn) >= SCHEMA_VERSION:  # the common case, without taking the write lock
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS payi_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        version = schema_version(conn)  # again, under the lock: another process may have migrated
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _migration(target):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO payi_schema (version, applied_at) VALUES (?, ?)",
                (target, format_timestamp(datetime.now(timezone.utc))),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return max(version, SCHEMA_VERSION)


def format_timestamp(moment: datetime) -> str:
    """UTC with a fixed width, so that text order is time order (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    elif moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=timezone.utc)


def _side(units: Mapping[str, Units], kind: str, side: str) -> int | None:
    unit = units.get(kind)
    return None if unit is None else _count(getattr(unit, side))


def price_key(model: str | None, price_as_resource: str | None) -> str | None:
    """The model a call is priced as: Pay-i's `price_as_resource` when given, else the request's model."""
    return price_as_resource or model


def estimate_cost(
    prices: Mapping[str, Price], key: str | None, input_tokens: int | None, output_tokens: int | None
) -> float | None:
    """US dollars for these tokens at `prices[key]`, or None when no price or no usage is known."""
    if key is None or (input_tokens is None and output_tokens is None):
        return None
    price = prices.get(key)
    if price is None:
        return None
    return ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1_000_000


def row_for(call: CallRecord, prices: Mapping[str, Price]) -> Row:
    """The `calls` row of one record, in COLUMNS order, every value storable (see the module docstring).

    Raises only for a record that is not a CallRecord's shape (e.g. its timestamp not a datetime).
    """
    ctx = call.context
    units = call.units
    input_tokens = _count(call.input_tokens)
    output_tokens = _count(call.output_tokens)
    return (
        format_timestamp(call.timestamp),
        _text(call.category),
        _text(call.resource),
        _text(call.method),
        _text(call.url),
        _integer(call.status),
        _real(call.latency_ms),
        _real(call.time_to_first_token_ms),
        int(call.streamed),
        int(call.proxied),
        int(call.failed),
        _text(call.response_id),
        *[store(getattr(ctx, name)) for name, store in _STORE_FIELDS],
        input_tokens,
        output_tokens,
        _side(units, "text", "input"),
        _side(units, "text", "output"),
        _side(units, "text_cache_read", "input"),
        _side(units, "text_cache_write", "input"),
        _side(units, "reasoning", "output"),
        _json(
            {
                kind: {"input": _count(unit.input), "output": _count(unit.output)}
                for kind, unit in units.items()
            }
        ),
        estimate_cost(prices, price_key(call.resource, ctx.price_as_resource), input_tokens, output_tokens),
    )
