"""The ledger for Django: `manage.py payi_report` and the staff-only usage page, fed by real views."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

import payi_web
from payi_web.fake_provider import FakeProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The ledger on, in a file of this test's own."""
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("PAYI_LEDGER", str(path))
    settings.PAYI = {**settings.PAYI, "LEDGER": True}
    yield path
    settings.PAYI = {**settings.PAYI, "LEDGER": False}  # closes the sink


@pytest.fixture
def calls_made(ledger: Path, make_user: Any, provider: FakeProvider) -> dict[str, Any]:
    """Alice (acme) makes 2 calls, Bob (globex) 1; all written to the ledger."""
    alice = make_user("alice", account="acme")
    bob = make_user("bob", account="globex")
    for user, paths in ((alice, ["/summary/", "/twice/"]), (bob, ["/cbv/"])):
        client = Client()
        client.force_login(user)
        for path in paths:
            assert client.get(path).status_code == 200
    assert payi_web.flush(5)
    return {"alice": str(alice.pk), "bob": str(bob.pk)}


def test_payi_report_json_has_the_calls_of_each_user(calls_made: dict[str, Any]) -> None:
    out = StringIO()
    call_command("payi_report", "--format", "json", "--by", "account_name,user_id,use_case_name", stdout=out)
    report = json.loads(out.getvalue())
    rows = {(g["account_name"], g["user_id"], g["use_case_name"]): g["calls"] for g in report["groups"]}
    assert rows == {
        ("acme", calls_made["alice"], "summary"): 1,
        ("acme", calls_made["alice"], "twice"): 2,
        ("globex", calls_made["bob"], "cbv"): 1,
    }
    assert report["total"]["calls"] == 4 and report["total"]["input_tokens"] > 0


def test_payi_report_table_and_csv_with_an_explicit_db(calls_made: dict[str, Any], ledger: Path) -> None:
    table = StringIO()
    call_command("payi_report", "--db", str(ledger), "--since", "1h", stdout=table)
    assert "acme" in table.getvalue() and "globex" in table.getvalue()
    csv = StringIO()
    call_command("payi_report", "--db", str(ledger), "--format", "csv", "--by", "account_name", stdout=csv)
    lines = csv.getvalue().strip().splitlines()
    assert lines[0].startswith("account_name,calls")
    assert {line.split(",")[0] for line in lines[1:]} >= {"acme", "globex"}


def test_payi_report_errors_are_command_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"missing\.sqlite3"):
        call_command("payi_report", "--db", str(tmp_path / "missing.sqlite3"))
    with pytest.raises(CommandError, match="since"):
        call_command("payi_report", "--since", "yesterday-ish")
    with pytest.raises(CommandError):
        call_command("payi_report", "--by", "shoe_size")


def test_the_usage_page_is_for_staff_only(make_user: Any, client: Client) -> None:
    response = client.get("/payi/")
    assert response.status_code == 302 and "/accounts/login/?next=/payi/" in response["Location"]
    client.force_login(make_user("alice", account="acme"))
    assert client.get("/payi/").status_code == 403


def test_the_usage_page_shows_the_ledger_to_staff(calls_made: dict[str, Any], make_user: Any) -> None:
    client = Client()
    client.force_login(make_user("admin", staff=True))
    response = client.get("/payi/?since=24h")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "no-cache" in response["Cache-Control"] and response["X-Robots-Tag"] == "noindex"
    page = response.content.decode()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    for text in ("acme", "globex", calls_made["alice"], calls_made["bob"], "twice", "cbv"):
        assert text in page
    assert client.post("/payi/").status_code == 405  # read-only
    bad = client.get("/payi/?since=not-a-time")
    assert bad.status_code == 200 and 'class="error"' in bad.content.decode()
