"""`python -m payi_web demo`: the core in one screen, with no network and no account.

`python -m payi_web report`: usage per account, user, use case and model, from the local ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from . import configure, get_context, payi_headers, track, track_context
from .ledger import ReportError, run_report
from .ledger import add_arguments as add_report_arguments


def _show(label: str) -> None:
    print(f"  {label}")
    for name, value in sorted(payi_headers(proxy=False).items()):
        print(f"      {name}: {value}")


@track(use_case_name="document_summary", use_case_version=2)
def summarize(document: str) -> None:
    _show(f"summarize({document!r}) inside @track(use_case_name='document_summary'):")
    with track_context(use_case_step="outline", request_properties={"words": str(len(document.split()))}):
        _show("  nested track_context(use_case_step='outline'):")


async def request(user_id: str, account_name: str) -> str:
    async with track_context(user_id=user_id, account_name=account_name):
        await asyncio.sleep(0.01)  # other requests run meanwhile
        ctx = get_context()
        return f"{user_id} -> user_id={ctx.user_id} account_name={ctx.account_name}"


def demo() -> None:
    print("payi-web core demo: the Pay-i headers each scope would send (plain-JSON mode).\n")
    configure(defaults={"limit_ids": ["monthly-cap"], "request_properties": {"env": "demo"}})
    _show("application-wide defaults (configure):")
    with track_context(user_id="42", account_name="acme"):
        summarize("The quick brown fox")
    print("\n  three concurrent asyncio requests, each with its own user:")

    async def main() -> list[str]:
        users = [("alice", "acme"), ("bob", "acme"), ("carol", "globex")]
        return list(await asyncio.gather(*(request(u, a) for u, a in users)))

    for line in asyncio.run(main()):
        print(f"      {line}")
    configure()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payi_web", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show the tracking context and headers of a few scopes")
    report = commands.add_parser(
        "report", help="usage per account, user, use case and model, from the ledger"
    )
    add_report_arguments(report)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo()
    elif args.command == "report":
        try:
            run_report(args, sys.stdout)
        except ReportError as exc:
            report.exit(1, f"{report.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
