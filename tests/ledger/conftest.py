from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from payi_web.ledger import LedgerSink


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
