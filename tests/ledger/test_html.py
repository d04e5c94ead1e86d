"""The usage page: a complete, escaped, self-contained HTML document that a browser renders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from payi_web.core.records import Units
from payi_web.ledger import LedgerSink, render_usage_page
from tests.browser import chromium, dump_dom, needs_chromium

from .helpers import T0, make_call

MakeSink = Callable[..., LedgerSink]
EVIL = '<script>alert("x")</script>&'


@pytest.fixture
def ledger(make_sink: MakeSink, db: Path) -> Path:
    sink = make_sink()
    for hour in range(30):
        for user in ("alice", "bob"):
            sink.record(
                make_call(
                    context={"account_name": "acme", "user_id": user, "use_case_name": "chat"},
                    timestamp=T0 + timedelta(hours=hour),
                    units={"text": Units(100 * (hour + 1), 10)},
                )
            )
    sink.record(make_call(context={"user_id": EVIL, "account_name": EVIL}, model=EVIL))
    assert sink.flush(5)
    return db


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("?"):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_has_the_tables_and_the_chart_and_escapes_everything(ledger: Path) -> None:
    page = render_usage_page(ledger, title="Usage <b>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page  # the ledger's values are escaped, and the page has no script
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "<title>Usage &lt;b&gt;</title>" in page
    parser = _Tags()
    parser.feed(page)
    assert parser.external == []  # no CDN, no asset: only the relative period links
    assert parser.tags.count("table") == 2 and parser.tags.count("svg") == 1
    assert parser.tags.count("g") == 30  # one bar per hour of the 30 hours
    text = "".join(parser.text)
    for expected in ("By account, user and use case", "alice", "bob", EVIL, "61", "total"):
        assert expected in text
    assert "est. cost" in text and "No price table configured" in text
    assert "usage unknown" not in text  # that column only appears when some call's usage is unknown


def test_the_page_explains_a_missing_ledger_and_a_bad_period(tmp_path: Path, ledger: Path) -> None:
    page = render_usage_page(tmp_path / "missing.db")
    assert "no ledger at" in page and "<table" not in page
    assert not (tmp_path / "missing.db").exists()
    bad = render_usage_page(ledger, since="<yesterday>")
    assert "neither a duration" in bad and "&lt;yesterday&gt;" in bad
    empty = render_usage_page(ledger, since="2999-01-01")
    assert "No calls recorded in this period." in empty
    priced = render_usage_page(ledger, since="2025-03-01", prices={"gpt-4o-mini": (1.0, 2.0)})
    assert "est. cost<br><b>~$" in priced and "an estimate" in priced


@needs_chromium
def test_headless_chromium_renders_the_page(ledger: Path, tmp_path: Path) -> None:
    page_file = tmp_path / "usage.html"
    page_file.write_text(render_usage_page(ledger), encoding="utf-8")
    dom = dump_dom(page_file.as_uri(), tmp_path / "profile")
    # What the browser built from the page: the tables, their cells, and the chart's bars.
    assert '<table id="usage-by-user">' in dom and '<table id="usage-by-model">' in dom
    assert '<svg id="tokens-chart"' in dom and dom.count("<rect") >= 60
    assert "<td>alice</td>" in dom and "&lt;script&gt;" in dom
    assert "<script" not in dom
    screenshot = tmp_path / "usage.png"
    chromium(tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1000,900", page_file.as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
