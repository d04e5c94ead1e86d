"""The local ledger: every tracked call kept in an SQLite file, and the usage report on it.

`configure()` installs a `LedgerSink` by default when no Pay-i API key is configured, so that
development, CI and examples keep a record of which user, account and use case every GenAI
call was attributed to and what it spent. Read it with `python -m payi_web report`, or render
`render_usage_page()` from a view.
"""

from __future__ import annotations

from .html import render_usage_page
from .query import DEFAULT_BY, GROUP_KEYS, GroupUsage, LedgerNotFound, ReportError, Usage, read_usage
from .report import FORMATS, ReportOptions, add_arguments, report_db, run_report
from .schema import SCHEMA_VERSION, Price
from .setup import DEFAULT_FILENAME, ENV_VAR, installed_sink, ledger_path
from .sink import LedgerSink, LedgerStats

__all__ = [
    "DEFAULT_BY",
    "DEFAULT_FILENAME",
    "ENV_VAR",
    "FORMATS",
    "GROUP_KEYS",
    "SCHEMA_VERSION",
    "GroupUsage",
    "LedgerNotFound",
    "LedgerSink",
    "LedgerStats",
    "Price",
    "ReportError",
    "ReportOptions",
    "Usage",
    "add_arguments",
    "installed_sink",
    "ledger_path",
    "read_usage",
    "render_usage_page",
    "report_db",
    "run_report",
]
