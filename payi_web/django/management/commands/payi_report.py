"""`python manage.py payi_report`: the ledger's usage report; the options of `python -m payi_web report`."""

from __future__ import annotations

import argparse
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError

from ....ledger import ReportError, add_arguments, run_report


class Command(BaseCommand):
    help = (
        "Usage per account, user, use case and model from the local Pay-i ledger: calls, errors, "
        "tokens, p50/p95 latency and estimated cost."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run_report(options, cast(TextIO, self.stdout))
        except ReportError as exc:
            raise CommandError(str(exc)) from None
