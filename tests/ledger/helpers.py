"""Call records built directly, and a look into the ledger file, for the ledger tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from payi_web.context import TrackingContext
from payi_web.records import CallRecord, Units

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_call(
    *,
    context: Mapping[str, Any] | None = None,
    units: Mapping[str, Units] | None = None,
    timestamp: datetime = T0,
    model: str | None = "gpt-4o-mini",
    latency_ms: float = 100.0,
    failed: bool = False,
    response_id: str | None = "chatcmpl-1",
    **fields: Any,
) -> CallRecord:
    values: dict[str, Any] = {
        "timestamp": timestamp,
        "category": "system.openai",
        "resource": model,
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "status": 500 if failed else 200,
        "latency_ms": latency_ms,
        "time_to_first_token_ms": None,
        "response_id": response_id,
        "failed": failed,
        "streamed": False,
        "proxied": False,
        "context": TrackingContext(**(context or {})),
        "units": {"text": Units(10, 5)} if units is None else units,
        "headers": {},
    }
    values.update(fields)
    return CallRecord(**values)


def rows(path: Path | str, where: str = "") -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(f"SELECT * FROM calls {where} ORDER BY id")]
    finally:
        conn.close()


def count(path: Path | str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    finally:
        conn.close()
