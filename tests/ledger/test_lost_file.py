"""The ledger file deleted or emptied while the app runs: a new one is started, nothing claimed is lost."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import payi_web
from payi_web.ledger import SCHEMA_VERSION, LedgerSink
from payi_web.ledger import file as ledger_file
from payi_web.ledger.schema import Row

from .helpers import ask, chat_client, count, make_call, rows


def _calls_from_users(client: object, label: str, users: int, per_user: int) -> set[tuple[str, str]]:
    """`per_user` calls from each of `users` threads at once; the (user, response id) each leaves."""
    barrier = threading.Barrier(users)

    def work(u: int) -> None:
        barrier.wait()
        with payi_web.track_context(user_id=f"{label}-user-{u}"):
            for i in range(per_user):
                ask(client, f"{label} {u}-{i}")  # type: ignore[arg-type]

    threads = [threading.Thread(target=work, args=(u,)) for u in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {(f"{label}-user-{u}", f"chatcmpl-{label} {u}-{i}") for u in range(users) for i in range(per_user)}


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_file_deleted_or_emptied_while_running_is_started_anew(
    damage: str, app_ledger: LedgerSink, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = chat_client()
    _calls_from_users(client, "early", users=2, per_user=10)
    assert payi_web.flush(5) and count(db) == 20

    if damage == "deleted":
        db.unlink()
    else:
        os.truncate(db, 0)
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        late = _calls_from_users(client, "late", users=4, per_user=25)
        assert payi_web.flush(5)
        later = _calls_from_users(client, "later", users=2, per_user=5)  # and it goes on
        assert payi_web.flush(5)

    # Every call after the damage is in the file, with its own user; the earlier ones went with it.
    assert {(row["user_id"], row["response_id"]) for row in rows(db)} == late | later
    assert count(db) == 110
    stats = app_ledger.stats
    assert (stats.written, stats.failed, stats.dropped) == (130, 0, 0)  # all of them were written
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT version FROM payi_schema").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()
    logged = [r.getMessage() for r in caplog.records if f"was {damage} while the app ran" in r.getMessage()]
    assert len(logged) == 1 and str(db) in logged[0]


def test_a_file_that_cannot_be_started_anew_is_counted_as_failed(
    app_ledger: LedgerSink, db: Path, tmp_path: Path
) -> None:
    client = chat_client()
    ask(client, "early")
    assert payi_web.flush(5)
    db.unlink()
    db.mkdir()  # the path is taken: no file can be made there
    ask(client, "late")
    assert payi_web.flush(5) is False
    assert (app_ledger.stats.written, app_ledger.stats.failed) == (1, 1)  # never claimed as written


def test_a_batch_committed_to_a_file_deleted_meanwhile_is_written_again(
    make_sink: Callable[..., LedgerSink], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink()
    sink.record(make_call(response_id="early"))
    assert sink.flush(5)
    insert_rows = ledger_file.insert_rows
    deletions: list[Path] = []

    def insert_then_delete(conn: sqlite3.Connection, batch: Sequence[Row]) -> None:
        insert_rows(conn, batch)
        if not deletions:  # `rm` by someone else, between this batch's check of the file and its commit
            db.unlink()
            deletions.append(db)

    monkeypatch.setattr(ledger_file, "insert_rows", insert_then_delete)
    sink.record(make_call(response_id="late", context={"user_id": "dora"}))
    assert sink.flush(5)
    assert deletions == [db]
    assert [(row["response_id"], row["user_id"]) for row in rows(db)] == [("late", "dora")]
    assert (sink.stats.written, sink.stats.failed) == (2, 0)
