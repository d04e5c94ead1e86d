"""`flask payi check` and `flask payi report`: the app's tracking configuration, and usage from the ledger.

`PayiTracking.init_app` adds the `payi` group to the app's CLI.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from dataclasses import dataclass
from typing import Any, Final

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .. import current_config
from .._compat.flask import proxied_object
from ..instrument import is_instrumented
from ..web import security_findings
from ._settings import spell
from .extension import EXTENSION_KEY, PREFIX, PayiState, describe

__all__ = ["Problem", "find_problems", "payi_cli"]

LEVELS: Final = ("INFO", "WARNING", "ERROR")

payi_cli = AppGroup("payi", help="Pay-i tracking: check the configuration, report usage from the ledger.")


@dataclass(frozen=True)
class Problem:
    level: str  # INFO, WARNING or ERROR
    id: str  # payi_web.flask.W001 ...
    message: str
    hint: str = ""

    def __str__(self) -> str:
        hint = f"\n      HINT: {self.hint}" if self.hint else ""
        return f"  {self.level} {self.id}: {self.message}{hint}"


def _state(app: Flask) -> PayiState:
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, PayiState):
        raise click.ClickException(
            f"PayiTracking is not initialised on app {app.name!r} (PayiTracking(app) or payi.init_app(app))"
        )
    return state


def _fields(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "-"


def describe_configuration(app: Flask, state: PayiState) -> list[tuple[str, str]]:
    """The effective configuration, as (name, value) lines; the API key is never shown."""
    s = state.settings
    config = state.config
    user, user_origin = state.user_id_resolver()
    account, account_origin = state.account_resolver()
    context, context_origin = state.context_resolver()

    def resolver(fn: Any, origin: str) -> str:
        if fn is None:
            return "- (none: the field is not set)"
        if origin == "Flask-Login":
            return "Flask-Login current_user.get_id() (the default)"
        return f"{describe(fn)} ({origin})"

    if s.API_KEY:
        api_key = "<set in PAYI_API_KEY config, redacted>"
    elif config.api_key:
        api_key = "<set from the PAYI_API_KEY environment variable, redacted>"
    else:
        api_key = "<unset>"
    instrumented = "yes" if is_instrumented() else "no"
    blueprints = [
        f"{name}: {_fields(dict(args))}"
        for name, bp in app.blueprints.items()
        if (args := state.extension.blueprint_fields(bp)) is not None
    ]
    return [
        (PREFIX + "USER_ID", resolver(user, user_origin)),
        (PREFIX + "ACCOUNT_NAME", resolver(account, account_origin)),
        (PREFIX + "CONTEXT", resolver(context, context_origin)),
        ("context defaults", _fields(s.context_defaults())),
        (PREFIX + "EXCLUDE_PATHS", ", ".join(p.pattern for p in s.EXCLUDE_PATHS) or "-"),
        (PREFIX + "INSTRUMENT", f"{s.INSTRUMENT} (httpx/httpx2 clients instrumented now: {instrumented})"),
        (PREFIX + "API_KEY", api_key),
        (PREFIX + "BASE_URL", config.base_url),
        (PREFIX + "HEADER_HOSTS", ", ".join(config.header_hosts) or "-"),
        (PREFIX + "LEDGER", config.ledger or "off"),
        (PREFIX + "PRICES", _fields(dict(config.prices))),
        ("tracked blueprints", "; ".join(blueprints) or "-"),
    ]


def find_problems(app: Flask, state: PayiState) -> list[Problem]:
    """What `flask payi check` reports, like Django's system checks."""
    problems = _process_problems(state)
    problems += [
        Problem("WARNING", f"payi_web.flask.{finding.code}", finding.message, finding.hint)
        for finding in security_findings(
            state.settings,
            debug=app.debug,
            where=spell,
            api_key=state.config.api_key,
            base_url=state.config.base_url,
        )
    ]
    problems += _resolver_problems(state)
    problems += _recording_problems(state)
    if state.user_id_resolver(app)[0] is None:
        problems.append(
            Problem(
                "INFO",
                "payi_web.flask.I001",
                "requests get no user id: no PAYI_USER_ID, no @user_id_loader, and Flask-Login is "
                "not set up on this app",
            )
        )
    return problems


def _process_problems(state: PayiState) -> list[Problem]:
    problems = []
    if current_config() is not state.config:
        problems.append(
            Problem(
                "WARNING",
                "payi_web.flask.W001",
                "the process-wide configuration (API key, base URL, header hosts, ledger, defaults "
                "outside requests) was replaced after this app was initialised",
                "another app's init_app() or a configure() call ran later; give every app of the "
                "process the same PAYI_API_KEY, PAYI_BASE_URL, PAYI_HEADER_HOSTS and PAYI_LEDGER",
            )
        )
    if state.settings.INSTRUMENT and not is_instrumented():
        problems.append(
            Problem(
                "WARNING",
                "payi_web.flask.W006",
                "PAYI_INSTRUMENT is true but httpx/httpx2 clients are not instrumented now",
                "something called payi_web.uninstrument(); or is openai/anthropic's HTTP library missing?",
            )
        )
    return problems


def _resolver_problems(state: PayiState) -> list[Problem]:
    problems = []
    for key, decorator, code in (
        ("USER_ID", "@user_id_loader", "W004"),
        ("ACCOUNT_NAME", "@account_loader", "W005"),
    ):
        if getattr(state.settings, key) is not None and state.extension.has_loader(key):
            problems.append(
                Problem(
                    "WARNING",
                    f"payi_web.flask.{code}",
                    f"both {PREFIX + key} and {decorator} are set; {PREFIX + key} is used",
                    "remove one of them",
                )
            )
    return problems


def _recording_problems(state: PayiState) -> list[Problem]:
    config = state.config
    if not config.api_key and not config.ledger:
        return [
            Problem(
                "WARNING",
                "payi_web.flask.W007",
                "no Pay-i API key and the ledger is off: tracked calls are neither sent nor recorded",
                "set PAYI_API_KEY, or PAYI_LEDGER to a file",
            )
        ]
    directory = os.path.dirname(config.ledger or "") or "."
    if config.ledger and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        return [
            Problem(
                "ERROR",
                "payi_web.flask.E001",
                f"the ledger's directory {directory!r} does not exist or is not writable",
                "set PAYI_LEDGER (config key or environment variable) to a writable path, or False",
            )
        ]
    return []


@payi_cli.command("check")
@click.option(
    "--fail-level",
    type=click.Choice(["ERROR", "WARNING"], case_sensitive=False),
    default="ERROR",
    show_default=True,
    help="exit with status 1 if a problem of this level or above is found",
)
def check(fail_level: str) -> None:
    """Print the effective Pay-i configuration (API key redacted) and the problems found."""
    app = proxied_object(current_app)
    state = _state(app)
    click.echo(f"payi-web configuration of app {app.name!r}:")
    lines = describe_configuration(app, state)
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        click.echo(f"  {name.ljust(width)}  {value}")
    problems = find_problems(app, state)
    if not problems:
        click.echo("No problems found.")
        return
    click.echo(f"{len(problems)} problem(s) found:")
    for problem in problems:
        click.echo(str(problem))
    threshold = LEVELS.index(fail_level.upper())
    if any(LEVELS.index(p.level) >= threshold for p in problems):
        sys.exit(1)


def _report_parser() -> argparse.ArgumentParser:
    from ..ledger import add_arguments

    parser = argparse.ArgumentParser(
        prog="flask payi report",
        description="Usage per account, user, use case and model, from the local ledger "
        "(the same options as `python -m payi_web report`; the app's PAYI_LEDGER and PAYI_PRICES "
        "are the defaults).",
    )
    add_arguments(parser)
    return parser


@payi_cli.command(
    "report",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def report(options: tuple[str, ...]) -> None:
    """Usage per account, user, use case and model, from the ledger (--help for the options)."""
    from ..ledger import ReportError, ledger_path, run_report

    app = proxied_object(current_app)
    state = _state(app)
    parser = _report_parser()
    args = parser.parse_args(list(options))  # argparse prints the usage and exits 2 on a bad option
    values = vars(args)
    if not values.get("db"):
        values["db"] = ledger_path(state.settings.LEDGER)
    values["prices"] = dict(state.settings.PRICES)  # --price adds to / overrides these
    out = io.StringIO()
    try:
        run_report(values, out)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(out.getvalue(), nl=False)
