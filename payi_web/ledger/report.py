"""The usage report: `python -m payi_web report`, and the same for `manage.py` and `flask` commands.

    python -m payi_web report [--db PATH] [--by account_name,user_id,use_case_name,model]
                              [--since 24h|ISO-date] [--format table|csv|json] [--price MODEL=IN,OUT]

A framework's command adds the options with `add_arguments(parser)` (argparse, as Django's
commands use) or declares them itself, then calls `run_report(options, out)` with the parsed
namespace or a dict of the same names (as Django's `handle(**options)` and click pass them).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TextIO

from ..core.config import current_config
from .query import DEFAULT_BY, GROUP_KEYS, GroupUsage, ReportError, Usage, parse_by, parse_since, read_usage
from .schema import Price
from .setup import ledger_path, validate_prices

__all__ = ["FORMATS", "ReportOptions", "add_arguments", "format_usage", "run_report"]

FORMATS: Final = ("table", "csv", "json")
_NONE: Final = "(none)"
ESTIMATE_NOTE: Final = "est. cost: an estimate from the configured price table, not a bill"


@dataclass(frozen=True)
class ReportOptions:
    db: str | None = None  # None: the ledger the application writes (see `report_db`)
    by: tuple[str, ...] = DEFAULT_BY
    since: datetime | None = None
    format: str = "table"
    prices: Mapping[str, Price] | None = None  # None: the configured ones

    @classmethod
    def coerce(cls, options: ReportOptions | argparse.Namespace | Mapping[str, Any]) -> ReportOptions:
        """From an argparse namespace or a dict (values parsed or still text)."""
        if isinstance(options, ReportOptions):
            return options
        get: Callable[[str], Any] = (
            options.get if isinstance(options, Mapping) else (lambda name: getattr(options, name, None))
        )
        by = get("by")
        fmt = get("format") or "table"
        if fmt not in FORMATS:
            raise ReportError(f"--format: choose from {', '.join(FORMATS)}, not {fmt!r}")
        price = get("price")
        prices = get("prices")
        if price:
            prices = {**(prices or {}), **dict(parse_price(p) if isinstance(p, str) else p for p in price)}
        db = get("db")
        return cls(
            db=os.fspath(db) if db else None,
            by=DEFAULT_BY if by is None else parse_by(by),
            since=parse_since(get("since")),
            format=fmt,
            prices=validate_prices(prices) if prices is not None else None,
        )


def parse_price(text: str) -> tuple[str, Price]:
    """'gpt-4o=2.5,10' -> ('gpt-4o', (2.5, 10.0)): USD per million input, output tokens."""
    model, sep, numbers = text.rpartition("=")
    parts = numbers.split(",")
    try:
        if not sep or not model or len(parts) != 2:
            raise ValueError
        price = (float(parts[0]), float(parts[1]))
    except ValueError:
        raise ReportError(
            f"--price: expected MODEL=INPUT,OUTPUT (USD per million tokens), got {text!r}"
        ) from None
    return model, validate_prices({model: price})[model]


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ReportError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options, for `python -m payi_web report` and Django's `payi_report` command."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="the ledger file (default: $PAYI_LEDGER, else the configured one, else ./payi_ledger.sqlite3)",
    )
    parser.add_argument(
        "--by",
        type=_argparse_type(parse_by),
        default=DEFAULT_BY,
        metavar="KEYS",
        help=f"comma-separated groups, of: {', '.join(GROUP_KEYS)} (default: {','.join(DEFAULT_BY)})",
    )
    parser.add_argument(
        "--since",
        type=_argparse_type(parse_since),
        metavar="WHEN",
        help="only calls since then: a duration ago (24h, 7d, 30m) or an ISO date/time, UTC (2025-01-31)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--price",
        action="append",
        type=_argparse_type(parse_price),
        metavar="MODEL=IN,OUT",
        help="USD per million input, output tokens of MODEL, for the estimated cost (repeatable)",
    )


def report_db(db: str | os.PathLike[str] | None = None) -> str:
    """The ledger a report reads: `db` if given, else the rule `configure()` writes by."""
    if db:
        return os.path.abspath(os.path.expanduser(os.fspath(db)))
    return ledger_path(current_config().ledger)


def run_report(options: ReportOptions | argparse.Namespace | Mapping[str, Any], out: TextIO) -> None:
    """Read the ledger and write the report to `out`. Raises `ReportError` (with a message for the user)."""
    opts = ReportOptions.coerce(options)
    prices = opts.prices
    if prices is None:
        prices = current_config().prices
    usage = read_usage(report_db(opts.db), by=opts.by, since=opts.since, prices=prices)
    out.write(format_usage(usage, opts.format))


def _cost(group: GroupUsage) -> float | None:
    return None if group.estimated_cost_usd is None else round(group.estimated_cost_usd, 10)


def _latency(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _as_dict(usage: Usage, group: GroupUsage) -> dict[str, Any]:
    row: dict[str, Any] = {} if group is usage.total else dict(zip(usage.by, group.key, strict=True))
    row.update(
        calls=group.calls,
        errors=group.errors,
        input_tokens=group.input_tokens,
        output_tokens=group.output_tokens,
        unknown_usage=group.unknown_usage,
        p50_latency_ms=_latency(group.p50_latency_ms),
        p95_latency_ms=_latency(group.p95_latency_ms),
        estimated_cost_usd=_cost(group),
        priced_calls=group.priced_calls,
    )
    return row


METRICS: Final = (
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "unknown_usage",
    "p50_latency_ms",
    "p95_latency_ms",
    "estimated_cost_usd",
    "priced_calls",
)


def format_usage(usage: Usage, fmt: str) -> str:
    if fmt == "json":
        document = {
            "db": usage.db,
            "since": usage.since.isoformat() if usage.since else None,
            "by": list(usage.by),
            "groups": [_as_dict(usage, g) for g in usage.groups],
            "total": _as_dict(usage, usage.total),
            "note": ESTIMATE_NOTE,
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "csv":
        return _csv(usage)
    if fmt == "table":
        return _table(usage)
    raise ReportError(f"--format: choose from {', '.join(FORMATS)}, not {fmt!r}")


def _csv(usage: Usage) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*usage.by, *METRICS])
    for group in usage.groups:
        row = _as_dict(usage, group)
        writer.writerow(["" if row[name] is None else row[name] for name in (*usage.by, *METRICS)])
    return buffer.getvalue()


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _money(group: GroupUsage) -> str:
    if group.estimated_cost_usd is None:
        return "-"
    partial = "*" if group.priced_calls < group.calls else ""
    cost = group.estimated_cost_usd
    return f"~${cost:,.4f}{partial}" if cost >= 0.01 or cost == 0 else f"~${cost:.6f}{partial}"


def table_rows(usage: Usage) -> tuple[list[str], list[list[str]]]:
    """The report's header and rows as display text (the table format and the HTML page share them).

    The last row is the total. A column of calls with unknown usage (not counted in the
    token sums) appears only when there are such calls.
    """
    unknown = usage.total.unknown_usage > 0
    header = [*usage.by, "calls", "errors", "input tok", "output tok"]
    header += ["usage unknown"] if unknown else []
    header += ["p50 ms", "p95 ms", "est. cost"]
    rows = []
    for group in [*usage.groups, usage.total] if usage.by else [usage.total]:
        label = [_NONE if k is None else k for k in group.key]
        if group is usage.total:
            label = ["total"] + [""] * (len(usage.by) - 1) if usage.by else []
        row = [
            *label,
            _num(group.calls),
            _num(group.errors),
            _num(group.input_tokens),
            _num(group.output_tokens),
        ]
        row += [_num(group.unknown_usage)] if unknown else []
        row += [_num(group.p50_latency_ms, 1), _num(group.p95_latency_ms, 1), _money(group)]
        rows.append(row)
    return header, rows


def _table(usage: Usage) -> str:
    header, rows = table_rows(usage)
    title = f"Pay-i usage from the ledger {usage.db}"
    if usage.since:
        title += f", since {usage.since:%Y-%m-%d %H:%M} UTC"
    if not usage.groups:
        return f"{title}\nno calls recorded{' in that period' if usage.since else ''}\n"
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    first_metric = len(usage.by)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i < first_metric else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [title, "", line(header), line(["-" * w for w in widths])]
    if len(rows) > 1:
        out.extend(line(r) for r in rows[:-1])
        out.append(line(["-" * w for w in widths]))
    out.append(line(rows[-1]))
    out.append("")
    notes = ["sorted by tokens; p50/p95: nearest-rank latency percentiles"]
    if usage.total.estimated_cost_usd is not None:
        notes.append(ESTIMATE_NOTE + "; * some calls of the group had no price or no known usage")
    else:
        notes.append("est. cost: no price table configured (configure(prices=...) or --price MODEL=IN,OUT)")
    out.extend(notes)
    return "\n".join(out) + "\n"
