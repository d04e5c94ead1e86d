"""`payi_web.flush()` (and `LedgerSink.flush()`) is True only when nothing failed since the last flush."""

from __future__ import annotations

from pathlib import Path

import payi_web
from payi_web.ledger import LedgerSink

from .helpers import ask, chat_client, rows, wait_for


def test_flush_is_false_after_records_failed_since_the_last_flush(app_ledger: LedgerSink, db: Path) -> None:
    db.write_bytes(b"this is not an SQLite database\n" * 200)
    client = chat_client()
    with payi_web.track_context(user_id="alice"):
        ask(client, "lost")
    # The writer fails the record on its own, before anyone flushes.
    assert wait_for(lambda: app_ledger.stats.failed == 1)
    assert payi_web.flush(5) is False  # that failure is reported by the next flush, not swallowed
    assert payi_web.flush(5) is True  # and once: nothing failed since

    with payi_web.track_context(user_id="bob"):
        ask(client, "lost too")
        assert payi_web.flush(5) is False  # a failure in the flush's own batch
    assert app_ledger.stats.failed == 2

    db.unlink()  # the file fixed: the next records are written
    with payi_web.track_context(user_id="carol"):
        ask(client, "kept")
    assert payi_web.flush(5) is True
    assert [(row["user_id"], row["response_id"]) for row in rows(db)] == [("carol", "chatcmpl-kept")]
    assert (app_ledger.stats.written, app_ledger.stats.failed) == (1, 2)
