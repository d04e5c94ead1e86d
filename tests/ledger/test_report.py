"""The usage report: its numbers are what was recorded, and every format parses."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import payi_web
from payi_web.core.records import Units
from payi_web.ledger import LedgerSink, ReportError, add_arguments, read_usage, run_report
from payi_web.ledger.query import parse_since, percentile

from .helpers import T0, make_call

MakeSink = Callable[..., LedgerSink]

ALICE = {"account_name": "acme", "user_id": "alice", "use_case_name": "chat"}
BOB = {"account_name": "acme", "user_id": "bob", "use_case_name": "summary"}
CAROL = {"account_name": "globex", "user_id": "carol", "use_case_name": "chat"}


@pytest.fixture
def ledger(make_sink: MakeSink, db: Path) -> Path:
    """A known ledger: alice 10 calls, bob 3 (one failed, one with unknown usage), carol 2 old ones."""
    sink = make_sink()
    for i in range(10):  # latencies 10, 20, ... 100 ms; 100 in + 50 out tokens each
        sink.record(make_call(context=ALICE, units={"text": Units(100, 50)}, latency_ms=10.0 * (i + 1)))
    sink.record(make_call(context=BOB, model="gpt-4o", units={"text": Units(1000, 200)}, latency_ms=300))
    sink.record(make_call(context=BOB, model="gpt-4o", units={}, failed=True, latency_ms=5))
    sink.record(make_call(context=BOB, model="gpt-4o", units={"text": Units(7, 3)}, latency_ms=200))
    for _ in range(2):
        sink.record(make_call(context=CAROL, timestamp=T0 - timedelta(days=3), units={"text": Units(1, 1)}))
    assert sink.flush(5)
    return db


def _json_report(db: Path, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    run_report({"db": str(db), "format": "json", **options}, out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_the_numbers_are_what_was_recorded(ledger: Path) -> None:
    report = _json_report(ledger)
    assert report["by"] == ["account_name", "user_id", "use_case_name", "model"]
    by_user = {g["user_id"]: g for g in report["groups"]}
    assert [g["user_id"] for g in report["groups"]] == ["alice", "bob", "carol"]  # 1500, 1210, 4 tokens
    assert by_user["alice"] == {
        "account_name": "acme",
        "user_id": "alice",
        "use_case_name": "chat",
        "model": "gpt-4o-mini",
        "calls": 10,
        "errors": 0,
        "input_tokens": 1000,
        "output_tokens": 500,
        "unknown_usage": 0,
        "p50_latency_ms": 50.0,
        "p95_latency_ms": 100.0,
        "estimated_cost_usd": None,
        "priced_calls": 0,
    }
    assert by_user["bob"] == {
        "account_name": "acme",
        "user_id": "bob",
        "use_case_name": "summary",
        "model": "gpt-4o",
        "calls": 3,
        "errors": 1,
        "input_tokens": 1007,
        "output_tokens": 203,
        "unknown_usage": 1,
        "p50_latency_ms": 200.0,
        "p95_latency_ms": 300.0,
        "estimated_cost_usd": None,
        "priced_calls": 0,
    }
    assert (by_user["carol"]["calls"], by_user["carol"]["input_tokens"]) == (2, 2)
    total = report["total"]
    assert (total["calls"], total["errors"], total["input_tokens"], total["output_tokens"]) == (
        15,
        1,
        2009,
        705,
    )


def test_group_by_and_since(ledger: Path) -> None:
    by_account = _json_report(ledger, by="account_name")["groups"]
    assert [(g["account_name"], g["calls"]) for g in by_account] == [("acme", 13), ("globex", 2)]
    recent = _json_report(ledger, by="account_name", since=(T0 - timedelta(days=1)).isoformat())["groups"]
    assert [(g["account_name"], g["calls"]) for g in recent] == [("acme", 13)]
    everything = _json_report(ledger, by="")
    assert len(everything["groups"]) == 1 and everything["groups"][0]["calls"] == 15
    future = _json_report(ledger, since="2999-01-01")
    assert future["groups"] == [] and future["total"]["calls"] == 0


def test_estimated_cost_only_where_a_price_is_known(ledger: Path) -> None:
    report = _json_report(ledger, by="model", price=["gpt-4o=2.5,10"])
    by_model = {g["model"]: g for g in report["groups"]}
    # bob's priced calls: (1000 + 7) * 2.5 + (200 + 3) * 10 per million; the unknown-usage call has none.
    assert by_model["gpt-4o"]["estimated_cost_usd"] == pytest.approx((1007 * 2.5 + 203 * 10) / 1e6)
    assert by_model["gpt-4o"]["priced_calls"] == 2
    assert by_model["gpt-4o-mini"]["estimated_cost_usd"] is None
    assert "estimate" in report["note"]
    # The configured table prices too, and the table format labels it.
    payi_web.configure(ledger=False, prices={"gpt-4o-mini": (1, 1)})
    out = io.StringIO()
    run_report({"db": str(ledger), "by": "model"}, out)
    assert "~$0.0015" in out.getvalue()  # alice + carol: 1504 tokens at $1/M
    assert "an estimate from the configured price table" in out.getvalue()


def test_csv_parses_with_the_same_numbers(ledger: Path) -> None:
    out = io.StringIO()
    run_report({"db": str(ledger), "format": "csv"}, out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    as_json = _json_report(ledger)["groups"]
    assert len(parsed) == len(as_json) == 3
    for row, group in zip(parsed, as_json, strict=True):
        assert row["user_id"] == group["user_id"]
        assert int(row["calls"]) == group["calls"]
        assert int(row["input_tokens"]) == group["input_tokens"]
        assert float(row["p95_latency_ms"]) == group["p95_latency_ms"]
        assert row["estimated_cost_usd"] == ""  # unknown, not 0


def test_table_shows_every_group_and_the_total(ledger: Path) -> None:
    out = io.StringIO()
    run_report({"db": str(ledger), "by": "user_id"}, out)
    text = out.getvalue()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("user_id"))
    assert " ".join(header.split()) == (
        "user_id calls errors input tok output tok usage unknown p50 ms p95 ms est. cost"
    )
    alice = next(line for line in lines if line.startswith("alice"))
    assert alice.split() == ["alice", "10", "0", "1,000", "500", "0", "50.0", "100.0", "-"]
    bob = next(line for line in lines if line.startswith("bob"))
    assert bob.split() == ["bob", "3", "1", "1,007", "203", "1", "200.0", "300.0", "-"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[:6] == ["total", "15", "1", "2,009", "705", "1"]
    assert "no price table configured" in text
    # Without groups: only the total (here of the last day: carol's calls are older).
    out = io.StringIO()
    run_report({"db": str(ledger), "by": "", "since": (T0 - timedelta(days=1)).isoformat()}, out)
    lines = [line.split() for line in out.getvalue().splitlines() if line and line[0].isspace()]
    assert lines == [["13", "1", "2,007", "703", "1", "60.0", "300.0", "-"]]


def test_the_command_line(ledger: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "payi_web",
            "report",
            "--db",
            str(ledger),
            "--by",
            "use_case_name",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    groups = json.loads(result.stdout)["groups"]
    assert [(g["use_case_name"], g["calls"]) for g in groups] == [("chat", 12), ("summary", 3)]
    table = subprocess.run(
        [sys.executable, "-m", "payi_web", "report", "--db", str(ledger), "--since", "2025-02-28"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "alice" in table.stdout and "carol" not in table.stdout


def test_the_command_line_reports_problems(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "payi_web", "report", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "no ledger at" in missing.stderr
    assert not (tmp_path / "none.db").exists()  # a report never creates the file
    bad = subprocess.run(
        [sys.executable, "-m", "payi_web", "report", "--by", "colour", "--since", "yesterday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown group 'colour'" in bad.stderr


def test_reusable_from_other_commands(ledger: Path, tmp_path: Path) -> None:
    # What Django's payi_report does: its own parser with our options, then run_report.
    parser = argparse.ArgumentParser(prog="manage.py payi_report")
    add_arguments(parser)
    args = parser.parse_args(
        ["--db", str(ledger), "--by", "account_name", "--since", "30d", "--format", "csv"]
    )
    assert args.by == ("account_name",)
    out = io.StringIO()
    run_report(args, out)
    assert out.getvalue().splitlines()[0].startswith("account_name,calls,errors")
    with pytest.raises(ReportError, match="no ledger at"):
        run_report({"db": str(tmp_path / "missing.db")}, io.StringIO())
    with pytest.raises(ReportError, match="--format"):
        run_report({"db": str(ledger), "format": "xml"}, io.StringIO())
    with pytest.raises(ReportError, match="unknown group"):
        read_usage(str(ledger), by=["nope"])


def test_a_corrupt_ledger_is_a_report_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(ReportError, match="cannot read the ledger"):
        read_usage(str(bad))


def test_since_and_percentiles() -> None:
    now = datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert parse_since("24h", now=now) == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_since("2025-01-01") == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert parse_since("2025-01-01T10:00:00+02:00") == datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
    with pytest.raises(ReportError, match="neither a duration"):
        parse_since("last week")
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95)) == (50.0, 95.0)


def test_paths_with_uri_characters(make_sink: MakeSink, tmp_path: Path) -> None:
    odd = tmp_path / "my ledger?#%" / "usage.sqlite3"
    odd.parent.mkdir()
    sink = make_sink(odd)
    sink.record(make_call())
    assert sink.flush(5)
    assert read_usage(str(odd)).total.calls == 1
