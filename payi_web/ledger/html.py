"""The usage page: one self-contained HTML document, for Django and Flask views to return as is.

Tables of usage by account, user and use case and by model, and an inline SVG chart of tokens
over time, rendered on the server: no script, no CDN, no external asset (its
Content-Security-Policy forbids them). Every value from the ledger is HTML-escaped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from html import escape
from typing import Final

from ..core.config import current_config
from .query import Bucket, ReportError, Usage, parse_since, read_usage
from .report import ESTIMATE_NOTE, report_db, table_rows
from .schema import Price

__all__ = ["render_usage_page"]

PAGE_BY: Final = ("account_name", "user_id", "use_case_name")
PERIODS: Final = (("24 hours", "24h"), ("7 days", "7d"), ("30 days", "30d"), ("all time", ""))

_STYLE: Final = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta,.note{color:#59636e;font-size:12px} .error{color:#b42318;font-weight:600}
nav a{margin-right:12px} nav a.current{font-weight:700;text-decoration:none;color:#1f2328}
table{border-collapse:collapse;margin-top:4px} th,td{padding:4px 10px;border-bottom:1px solid #d1d9e0}
th{text-align:left;background:#f6f8fa} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:700;border-top:2px solid #1f2328}
.summary span{display:inline-block;margin-right:24px} .summary b{font-size:18px}
svg text{font:11px system-ui,sans-serif;fill:#59636e}
"""

_INPUT_COLOR: Final = "#2f6feb"
_OUTPUT_COLOR: Final = "#f0883e"


def render_usage_page(
    db: str | os.PathLike[str] | None = None,
    *,
    since: str | datetime | None = None,
    prices: Mapping[str, Price] | None = None,
    title: str = "Pay-i usage",
) -> str:
    """The complete usage page of the ledger `db` (default: the one the application writes).

    `since` takes what the report's `--since` does ('24h', '7d', an ISO date) and may come
    straight from the query string: a bad value, or a missing or unreadable ledger, is shown
    on the page rather than raised. The page's period links are relative (`?since=24h`), so it
    works wherever it is mounted.
    """
    path = report_db(db)
    if prices is None:
        prices = current_config().prices
    since_text = since if isinstance(since, str) else None
    body: list[str] = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="meta">Ledger: {escape(path)}</div>',
        _nav(since_text),
    ]
    try:
        start = parse_since(since)
        by_who = read_usage(path, by=PAGE_BY, since=start, prices=prices)
        by_model = read_usage(path, by=("model",), since=start, prices=prices)
    except ReportError as exc:
        body.append(f'<p class="error">{escape(str(exc))}</p>')
    else:
        body.extend(_content(by_who, by_model))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _nav(since: str | None) -> str:
    links = []
    for label, value in PERIODS:
        current = (since or "") == value
        href = f"?since={value}" if value else "?"
        cls = ' class="current"' if current else ""
        links.append(f'<a href="{escape(href)}"{cls}>{escape(label)}</a>')
    return "<nav>Period: " + "".join(links) + "</nav>"


def _content(by_who: Usage, by_model: Usage) -> list[str]:
    total = by_who.total
    if not total.calls:
        period = " in this period" if by_who.since else ""
        return [f"<p>No calls recorded{period}.</p>"]
    cost = (
        f"<span>est. cost<br><b>~${total.estimated_cost_usd:,.4f}</b></span>"
        if total.estimated_cost_usd is not None
        else ""
    )
    parts = [
        '<p class="summary">'
        f"<span>calls<br><b>{total.calls:,}</b></span>"
        f"<span>errors<br><b>{total.errors:,}</b></span>"
        f"<span>input tokens<br><b>{total.input_tokens:,}</b></span>"
        f"<span>output tokens<br><b>{total.output_tokens:,}</b></span>{cost}</p>",
        "<h2>Tokens over time</h2>",
        chart_svg(by_who.buckets, by_who.bucket_width),
        "<h2>By account, user and use case</h2>",
        _table(by_who, "usage-by-user"),
        "<h2>By model</h2>",
        _table(by_model, "usage-by-model"),
        '<p class="note">Sorted by tokens. p50/p95: latency percentiles (nearest rank). '
        + escape(_cost_note(by_who))
        + "</p>",
    ]
    return parts


def _cost_note(usage: Usage) -> str:
    total = usage.total
    if total.estimated_cost_usd is None:
        return "No price table configured: no cost."
    partial = " * Some calls had no price or no known usage." if total.priced_calls < total.calls else ""
    return ESTIMATE_NOTE + "." + partial


def _table(usage: Usage, table_id: str) -> str:
    header, rows = table_rows(usage)
    first_metric = len(usage.by)
    out = [f'<table id="{table_id}"><thead><tr>']
    out.extend(f"<th>{escape(name)}</th>" for name in header)
    out.append("</tr></thead><tbody>")
    for index, row in enumerate(rows):
        is_total = index == len(rows) - 1
        out.append('<tr class="total">' if is_total else "<tr>")
        out.extend(
            f'<td class="n">{escape(cell)}</td>' if i >= first_metric else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _label(moment: datetime, width: timedelta) -> str:
    return f"{moment:%Y-%m-%d}" if width >= timedelta(days=1) else f"{moment:%m-%d %H:%M}"


def chart_svg(buckets: list[Bucket], width: timedelta) -> str:
    """Stacked bars of input and output tokens per time bucket, as an inline SVG element."""
    plot_w, plot_h, left, top, bottom = 760, 200, 60, 10, 40
    total_w, total_h = left + plot_w + 10, top + plot_h + bottom
    peak = _nice_ceiling(max((b.input_tokens + b.output_tokens for b in buckets), default=0))
    out = [
        f'<svg id="tokens-chart" xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
        f'viewBox="0 0 {total_w} {total_h}" role="img" aria-label="Input and output tokens over time">'
    ]
    for i in range(5):
        value = peak * i // 4
        y = top + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#d1d9e0"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,}</text>'
        )
    slot = plot_w / max(len(buckets), 1)
    bar = max(slot * 0.8, 1.0)
    for i, b in enumerate(buckets):
        x = left + i * slot + (slot - bar) / 2
        h_in = plot_h * b.input_tokens / peak
        h_out = plot_h * b.output_tokens / peak
        y_in = top + plot_h - h_in
        tip = escape(
            f"{_label(b.start, width)} UTC: {b.calls:,} calls, "
            f"{b.input_tokens:,} input, {b.output_tokens:,} output tokens"
        )
        out.append(
            f'<g class="bucket"><title>{tip}</title>'
            f'<rect x="{x:.1f}" y="{y_in:.1f}" width="{bar:.1f}" height="{h_in:.1f}" fill="{_INPUT_COLOR}"/>'
            f'<rect x="{x:.1f}" y="{y_in - h_out:.1f}" width="{bar:.1f}" height="{h_out:.1f}" '
            f'fill="{_OUTPUT_COLOR}"/></g>'
        )
    if buckets:
        last = len(buckets) - 1
        for i in sorted({0, last // 2, last}):
            x = left + i * slot + slot / 2
            anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
            if anchor != "middle":
                x = left + i * slot + (0 if anchor == "start" else slot)
            text = escape(_label(buckets[i].start, width))
            out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="{anchor}">{text}</text>')
    legend_y = total_h - 8
    out.append(
        f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{_INPUT_COLOR}"/>'
        f'<text x="{left + 14}" y="{legend_y}">input tokens</text>'
        f'<rect x="{left + 110}" y="{legend_y - 9}" width="10" height="10" fill="{_OUTPUT_COLOR}"/>'
        f'<text x="{left + 124}" y="{legend_y}">output tokens</text>'
        f'<text x="{left + plot_w}" y="{legend_y}" text-anchor="end">'
        f"UTC, one bar per {_width_text(width)}</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _width_text(width: timedelta) -> str:
    seconds = int(width.total_seconds())
    if seconds % 86400 == 0:
        days = seconds // 86400
        return "day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{seconds // 60} minutes"
