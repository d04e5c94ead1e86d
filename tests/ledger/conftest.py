from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import payi_web
from payi_web.ledger import LedgerSink, installed_sink


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def make_sink(db: Path) -> Iterator[Callable[..., LedgerSink]]:
    """LedgerSinks on `db` (or another path), all closed at the end of the test."""
    made: list[LedgerSink] = []

    def make(path: Path | None = None, **options: Any) -> LedgerSink:
        sink = LedgerSink(path or db, **options)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close(timeout=5)


@pytest.fixture
def app_ledger(db: Path, monkeypatch: pytest.MonkeyPatch) -> LedgerSink:
    """`payi_web.configure(ledger=db)`, as an app does it: the installed sink."""
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    payi_web.configure(ledger=db)
    sink = installed_sink()
    assert sink is not None and sink.path == str(db)
    return sink
