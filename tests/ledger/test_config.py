"""configure(ledger=..., prices=...): where the ledger goes, when it is on, and swapping it."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

import payi_web
from payi_web.core import records
from payi_web.ledger import LedgerSink, installed_sink, ledger_path, report_db

from .helpers import ask, chat_client, count, make_call, rows


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    return monkeypatch


def _ledger_sinks() -> list[LedgerSink]:
    return [s for s in records.sinks() if isinstance(s, LedgerSink)]


def test_on_by_default_without_an_api_key_in_the_working_directory(
    no_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_env.chdir(tmp_path)
    config = payi_web.configure()
    expected = str(tmp_path / "payi_ledger.sqlite3")
    assert config.ledger == expected
    assert _ledger_sinks() == [installed_sink()]
    sink = installed_sink()
    assert sink is not None and sink.path == expected
    assert not os.path.exists(expected)  # nothing written until a call is recorded
    no_env.chdir("/")
    assert payi_web.current_config().ledger == expected  # resolved once: chdir does not move it


def test_off_by_default_with_an_api_key(no_env: pytest.MonkeyPatch) -> None:
    assert payi_web.configure(api_key="k").ledger is None
    assert _ledger_sinks() == [] and installed_sink() is None
    no_env.setenv("PAYI_API_KEY", "from-env")
    assert payi_web.configure().ledger is None


def test_forced_on_with_a_key_and_off_without(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_env.chdir(tmp_path)
    assert payi_web.configure(api_key="k", ledger=True).ledger == str(tmp_path / "payi_ledger.sqlite3")
    assert payi_web.configure(api_key="k", ledger=tmp_path / "x.db").ledger == str(tmp_path / "x.db")
    assert payi_web.configure(ledger=False).ledger is None
    assert _ledger_sinks() == []


def test_the_environment_variable_wins_over_the_argument(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_env.setenv("PAYI_LEDGER", str(tmp_path / "env.sqlite3"))
    assert payi_web.configure(ledger=str(tmp_path / "arg.sqlite3")).ledger == str(tmp_path / "env.sqlite3")
    assert payi_web.configure(ledger=False).ledger is None  # but False still turns it off
    # The report finds the file by the same rule.
    assert report_db() == str(tmp_path / "env.sqlite3")
    assert ledger_path("elsewhere.db") == str(tmp_path / "env.sqlite3")


def test_relative_and_home_paths_are_made_absolute(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_env.chdir(tmp_path)
    no_env.setenv("HOME", str(tmp_path / "home"))
    assert payi_web.configure(ledger="var/l.db").ledger == str(tmp_path / "var" / "l.db")
    assert payi_web.configure(ledger="~/l.db").ledger == str(tmp_path / "home" / "l.db")


def test_configure_again_replaces_the_sink_and_the_old_one_finishes(
    no_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first_db, second_db = tmp_path / "one.db", tmp_path / "two.db"
    payi_web.configure(ledger=first_db)
    first = installed_sink()
    assert first is not None
    for _ in range(100):
        records.emit(make_call())
    payi_web.configure(ledger=second_db)  # the old sink writes what it held in the background
    second = installed_sink()
    assert second is not first and _ledger_sinks() == [second]
    records.emit(make_call())
    assert payi_web.flush(5)  # waits for the old sink too
    assert count(second_db) == 1 and count(first_db) == 100
    assert first.stats.written == 100
    records.emit(make_call())
    assert payi_web.flush(5)  # the old one, done, is no longer flushed; the new one still is
    assert count(second_db) == 2 and count(first_db) == 100
    payi_web.configure(ledger=False)
    assert _ledger_sinks() == []


def test_prices_are_validated_and_kept(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = payi_web.configure(ledger=tmp_path / "p.db", prices={"gpt-4o": (2.5, 10)})
    assert config.prices == {"gpt-4o": (2.5, 10.0)}
    sink = installed_sink()
    assert sink is not None and sink.prices == {"gpt-4o": (2.5, 10.0)}
    assert "prices={'gpt-4o': (2.5, 10.0)}" in repr(config)
    with pytest.raises(TypeError, match="prices must be a dict"):
        payi_web.configure(prices=[("gpt-4o", 1, 2)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"prices\['m'\] must be \(input, output\)"):
        payi_web.configure(prices={"m": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="not negative"):
        payi_web.configure(prices={"m": (-1, 2)})


def test_bad_ledger_arguments_fail_in_configure(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="ledger must be a file path, True, False or None"):
        payi_web.configure(ledger=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty file path"):
        payi_web.configure(ledger="")


def test_configure_never_waits_on_a_locked_file(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    payi_web.configure(ledger=db)
    client = chat_client()
    with payi_web.track_context(user_id="before"):
        ask(client, "before")
    assert payi_web.flush(5)
    old = installed_sink()
    assert old is not None
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with payi_web.track_context(user_id="queued"):
            for i in range(5):
                ask(client, f"queued-{i}")  # held by the old sink, whose writer waits on the lock
        payi_web.configure(ledger=db)
        # configure() returned while the lock is held, without waiting out the busy timeout:
        # the old sink's records are still waiting, none has failed.
        assert holder.in_transaction
        assert (old.stats.failed, old.stats.written) == (0, 1)
        with payi_web.track_context(user_id="after"):
            ask(client, "after")  # the new sink takes records at once
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert payi_web.flush(10)  # both sinks': the old one finishes in the background
    assert Counter(row["user_id"] for row in rows(db)) == {"before": 1, "queued": 5, "after": 1}
    assert (old.stats.failed, old.stats.written) == (0, 6)
    new = installed_sink()
    assert new is not None and new is not old and (new.stats.failed, new.stats.written) == (0, 1)
