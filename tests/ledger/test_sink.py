"""The ledger sink: every record becomes one row, off the calling thread, and nothing ever raises."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from payi_web.core import records
from payi_web.core.records import CallRecord, Units
from payi_web.ledger import SCHEMA_VERSION, LedgerSink
from payi_web.ledger.schema import COLUMNS

from .helpers import T0, count, make_call, rows

MakeSink = Callable[..., LedgerSink]


def test_a_record_becomes_one_row_with_every_field(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    assert not db.exists()  # created on the first write, not before
    call = make_call(
        context={
            "use_case_name": "summary",
            "use_case_id": "uc-1",
            "use_case_version": 3,
            "use_case_step": "outline",
            "use_case_properties": {"tier": "gold", "none": None},
            "limit_ids": ("cap-a", "cap-b"),
            "user_id": "José",
            "account_name": "acme",
            "request_properties": {"words": "4"},
            "price_as_category": "system.openai",
            "price_as_resource": "gpt-4o",
            "resource_scope": "global",
            "proxy": False,
            "log_prompt_and_response": True,
        },
        units={
            "text": Units(100, 20),
            "text_cache_read": Units(30, 0),
            "text_cache_write": Units(7, 0),
            "reasoning": Units(0, 12),
        },
        time_to_first_token_ms=12.5,
        streamed=True,
        proxied=True,
    )
    sink.record(call)
    assert sink.flush(5)
    (row,) = rows(db)
    assert row == {
        "id": 1,
        "timestamp": "2025-03-01T12:00:00.000000Z",
        "category": "system.openai",
        "model": "gpt-4o-mini",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
        "latency_ms": 100.0,
        "time_to_first_token_ms": 12.5,
        "streamed": 1,
        "proxied": 1,
        "failed": 0,
        "response_id": "chatcmpl-1",
        "use_case_name": "summary",
        "use_case_id": "uc-1",
        "use_case_version": 3,
        "use_case_step": "outline",
        "use_case_properties": '{"tier":"gold","none":null}',
        "limit_ids": '["cap-a","cap-b"]',
        "user_id": "José",
        "account_name": "acme",
        "request_properties": '{"words":"4"}',
        "price_as_category": "system.openai",
        "price_as_resource": "gpt-4o",
        "resource_scope": "global",
        "proxy": 0,
        "log_prompt_and_response": 1,
        "input_tokens": 137,
        "output_tokens": 32,
        "text_input_tokens": 100,
        "text_output_tokens": 20,
        "cache_read_tokens": 30,
        "cache_write_tokens": 7,
        "reasoning_tokens": 12,
        "units": json.dumps(
            {
                "text": {"input": 100, "output": 20},
                "text_cache_read": {"input": 30, "output": 0},
                "text_cache_write": {"input": 7, "output": 0},
                "reasoning": {"input": 0, "output": 12},
            },
            separators=(",", ":"),
        ),
        "estimated_cost_usd": None,  # no prices configured
    }
    assert set(row) == {"id", *COLUMNS}
    assert sink.stats.written == 1


def test_unknown_stays_null_and_zero_stays_zero(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    sink.record(make_call(units={}, response_id=None, status=None, failed=True))  # usage unknown
    sink.record(make_call(units={"text": Units(0, 0)}))  # known: nothing spent
    sink.record(make_call(units={"text": Units(5, None)}))  # output not reported
    assert sink.flush(5)
    unknown, zero, partial = rows(db)
    for column in ("input_tokens", "output_tokens", "text_input_tokens", "text_output_tokens"):
        assert unknown[column] is None
        assert zero[column] == 0
    assert (unknown["units"], unknown["status"], unknown["failed"], unknown["response_id"]) == (
        "{}",
        None,
        1,
        None,
    )
    # Context fields not given are NULL, not "" or "[]".
    assert all(unknown[c] is None for c in ("user_id", "limit_ids", "request_properties", "proxy"))
    assert zero["cache_read_tokens"] is None and zero["reasoning_tokens"] is None  # not reported
    assert (partial["text_input_tokens"], partial["text_output_tokens"]) == (5, None)
    assert (partial["input_tokens"], partial["output_tokens"]) == (5, 0)  # CallRecord's totals


def test_schema_version_table_and_wal(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    sink.record(make_call())
    assert sink.flush(5)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version FROM payi_schema").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    # A second sink (another process, a later run) reuses the file without migrating it again.
    other = make_sink()
    other.record(make_call())
    assert other.flush(5)
    assert count(db) == 2


def test_a_newer_schema_version_is_left_alone_and_still_written(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    sink.record(make_call())
    assert sink.flush(5)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO payi_schema VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.execute("ALTER TABLE calls ADD COLUMN something_new TEXT")
    conn.commit()
    conn.close()
    newer = make_sink()
    newer.record(make_call())
    assert newer.flush(5)
    assert count(db) == 2


def test_prices_fill_the_estimated_cost(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink(prices={"gpt-4o-mini": (1.0, 4.0), "gpt-4o": (10.0, 40.0)})
    sink.record(make_call(units={"text": Units(1_000_000, 500_000)}))
    sink.record(make_call(units={"text": Units(1000, 0)}, context={"price_as_resource": "gpt-4o"}))
    sink.record(make_call(model="unpriced"))
    sink.record(make_call(units={}))  # usage unknown: no cost
    assert sink.flush(5)
    costs = [row["estimated_cost_usd"] for row in rows(db)]
    assert costs == [pytest.approx(3.0), pytest.approx(0.01), None, None]


def test_many_threads_recording_at_once_lose_nothing(make_sink: MakeSink, db: Path) -> None:
    threads_n, per_thread = 16, 400
    sink = make_sink(batch_size=64)
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            sink.record(make_call(context={"user_id": f"user-{t}"}, response_id=f"{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sink.flush(30)
    got = {(row["user_id"], row["response_id"]) for row in rows(db)}
    assert got == {(f"user-{t}", f"{t}-{i}") for t in range(threads_n) for i in range(per_thread)}
    assert count(db) == threads_n * per_thread
    stats = sink.stats
    assert (stats.written, stats.dropped, stats.failed, stats.queued) == (threads_n * per_thread, 0, 0, 0)


def test_records_go_through_emit(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    records.add_sink(sink)
    try:
        records.emit(make_call(context={"user_id": "via-emit"}))
        assert records.flush(5)
    finally:
        records.remove_sink(sink)
    assert [row["user_id"] for row in rows(db)] == ["via-emit"]


class GatedSink(LedgerSink):
    """A ledger whose writer waits at a gate before each batch: the queue fills deterministically."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()
        self.writing = threading.Event()

    def _write(self, batch: list[CallRecord]) -> None:
        self.writing.set()
        self.gate.wait(10)
        super()._write(batch)


def test_a_full_queue_drops_records_counts_and_logs_once(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = GatedSink(db, max_queue=5)
    try:
        sink.record(make_call(response_id="first"))  # the writer takes it and waits at the gate
        assert sink.writing.wait(5)
        with caplog.at_level(logging.WARNING, logger="payi_web"):
            for i in range(12):
                sink.record(make_call(response_id=f"r{i}"))  # 5 fit, 7 are dropped
        assert sink.stats.dropped == 7
        assert sink.stats.queued == 5
        drops = [r for r in caplog.records if "dropped a call record" in r.getMessage()]
        assert len(drops) == 1 and "queue is full (5 records)" in drops[0].getMessage()
        sink.gate.set()
        assert sink.flush(5)
        assert [row["response_id"] for row in rows(db)] == ["first", "r0", "r1", "r2", "r3", "r4"]
        assert (sink.stats.written, sink.stats.dropped, sink.stats.queued) == (6, 7, 0)
    finally:
        sink.gate.set()
        sink.close(5)


def test_recording_is_only_an_enqueue(db: Path) -> None:
    sink = GatedSink(db)
    try:
        sink.record(make_call())
        assert sink.writing.wait(5)  # the writer is stuck: record() must still return at once
        start = time.perf_counter()
        for _ in range(1000):
            sink.record(make_call())
        assert time.perf_counter() - start < 1.0
        assert not sink.flush(0.05)  # not written in time
        sink.gate.set()
        assert sink.flush(5)
        assert count(db) == 1001
    finally:
        sink.gate.set()
        sink.close(5)


def test_close_without_waiting_lets_the_writer_finish_in_the_background(db: Path) -> None:
    sink = GatedSink(db)
    try:
        sink.record(make_call(response_id="first"))
        assert sink.writing.wait(5)  # the writer is stuck in a batch
        for i in range(10):
            sink.record(make_call(response_id=f"r{i}"))
        assert sink.close(timeout=0) is False  # returns at once: nothing written yet
        sink.record(make_call(response_id="late"))  # after close: dropped and counted
        sink.gate.set()
        assert sink.flush(5)  # waits for the writer to write what it held and stop
        assert [row["response_id"] for row in rows(db)] == ["first", *(f"r{i}" for i in range(10))]
        assert (sink.stats.written, sink.stats.dropped, sink.stats.queued) == (11, 1, 0)
        assert sink.flush(0) is True and sink.close(0) is True  # done
    finally:
        sink.gate.set()
        sink.close(5)


def test_a_locked_file_fails_the_batch_quietly_and_recovers(
    make_sink: MakeSink, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(busy_timeout=0.05)
    sink.record(make_call(response_id="before"))
    assert sink.flush(5)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with caplog.at_level(logging.WARNING, logger="payi_web"):
            for i in range(3):
                sink.record(make_call(response_id=f"locked-{i}"))  # never raises
                assert sink.flush(5) is False
        assert sink.stats.failed == 3
        logged = [r for r in caplog.records if "cannot write the ledger" in r.getMessage()]
        assert len(logged) == 1
        assert "locked" in logged[0].getMessage()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    sink.record(make_call(response_id="after"))
    assert sink.flush(5)
    assert [row["response_id"] for row in rows(db)] == ["before", "after"]
    assert (sink.stats.written, sink.stats.failed) == (2, 3)


def test_a_corrupt_file_never_breaks_recording(
    make_sink: MakeSink, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db.write_bytes(b"this is not an SQLite database\n" * 200)
    sink = make_sink()
    records.add_sink(sink)
    try:
        with caplog.at_level(logging.WARNING, logger="payi_web"):
            for _ in range(3):
                records.emit(make_call())  # the path a real call takes: nothing raises
                assert sink.flush(5) is False
    finally:
        records.remove_sink(sink)
    assert (sink.stats.written, sink.stats.failed) == (0, 3)
    logged = [r for r in caplog.records if "cannot write the ledger" in r.getMessage()]
    assert len(logged) == 1
    assert "not a database" in logged[0].getMessage()
    assert db.read_bytes().startswith(b"this is not an SQLite database")  # left as it was


def test_an_unopenable_path_is_counted(make_sink: MakeSink, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sink = make_sink(blocker / "ledger.sqlite3")  # a directory that cannot exist
    sink.record(make_call())
    assert sink.flush(5) is False
    assert sink.stats.failed == 1


def test_close_writes_everything_then_drops_later_records(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    for _ in range(50):
        sink.record(make_call())
    assert sink.close(5)
    assert count(db) == 50
    sink.record(make_call())  # after close: dropped and counted, not raised
    assert sink.stats.dropped == 1
    assert sink.flush(1) is True  # nothing pending
    assert count(db) == 50


def test_flush_without_records_and_timestamps_are_utc(make_sink: MakeSink, db: Path) -> None:
    sink = make_sink()
    assert sink.flush(0) is True
    assert not db.exists()
    from datetime import timedelta, timezone

    sink.record(make_call(timestamp=T0.astimezone(timezone(timedelta(hours=-5)))))
    assert sink.flush(5)
    assert rows(db)[0]["timestamp"] == "2025-03-01T12:00:00.000000Z"


def test_constructor_checks_its_bounds(db: Path) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        LedgerSink(db, max_queue=0)
