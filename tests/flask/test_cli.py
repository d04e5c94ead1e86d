"""`flask payi check` and `flask payi report`, and the usage page blueprint."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import flask_login
import pytest
from flask import Flask

import payi_web
from payi_web.fake_provider import FakeProvider
from payi_web.flask import PayiTracking, usage_blueprint
from tests.browser import dump_dom, needs_chromium
from tests.flask.conftest import CHAT, make_app, openai_for, org_of_current_user


def _run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["payi", *args])


def test_check_prints_the_configuration_with_the_api_key_redacted(tmp_path: Path) -> None:
    app = make_app(
        {
            "PAYI_API_KEY": "sk-payi-very-secret",
            "PAYI_ACCOUNT_NAME": "tests.flask.conftest:org_of_current_user",
            "PAYI_LIMIT_IDS": ["monthly"],
            "PAYI_EXCLUDE_PATHS": ["^/health"],
            "PAYI_LEDGER": str(tmp_path / "ledger.sqlite3"),
        },
        name="shop",
    )
    payi = PayiTracking(app)
    payi.track_blueprint(app.blueprints.get("x") or _blueprint(app), use_case_name="admin_tools")
    result = _run(app, "check")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sk-payi-very-secret" not in out and "very" not in out
    assert "payi-web configuration of app 'shop'" in out
    assert "PAYI_API_KEY" in out and "redacted" in out
    assert "Flask-Login current_user.get_id() (the default)" in out
    assert "tests.flask.conftest:org_of_current_user (PAYI_ACCOUNT_NAME)" in out
    assert "limit_ids=['monthly']" in out and "^/health" in out
    assert "admin: use_case_name='admin_tools'" in out
    assert "No problems found." in out


def _blueprint(app: Flask) -> Any:
    from flask import Blueprint

    bp = Blueprint("admin", __name__)
    bp.get("/")(lambda: "admin")
    app.register_blueprint(bp, url_prefix="/admin")
    return bp


def test_check_reports_problems_and_fails_by_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    app = make_app(
        {"PAYI_PROXY": True, "PAYI_BASE_URL": "http://payi.internal", "PAYI_USER_ID": lambda: "x"},
        login=False,
    )
    payi = PayiTracking(app)
    payi.user_id_loader(lambda: "y")
    other = make_app(name="other")
    PayiTracking(other)  # replaces the process-wide configuration
    result = _run(app, "check")
    assert result.exit_code == 0, result.output  # warnings only
    for code in ("W001", "W002", "W003", "W004"):
        assert f"payi_web.flask.{code}" in result.output
    assert "HINT:" in result.output
    assert _run(app, "check", "--fail-level", "WARNING").exit_code == 1
    payi_web.uninstrument()
    assert "payi_web.flask.W006" in _run(other, "check").output


def test_check_errors_and_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYI_LEDGER", str(tmp_path / "missing-dir" / "ledger.sqlite3"))
    app = make_app(login=False)
    PayiTracking(app)
    result = _run(app, "check")
    assert result.exit_code == 1
    assert "payi_web.flask.E001" in result.output and "payi_web.flask.I001" in result.output


def test_commands_need_the_extension() -> None:
    app = Flask("bare")
    from payi_web.flask.cli import payi_cli

    app.cli.add_command(payi_cli)
    result = _run(app, "check")
    assert result.exit_code == 1 and "PayiTracking is not initialised" in result.output


def is_admin() -> bool:
    user = flask_login.current_user
    return bool(user.is_authenticated and user.id == "u1")


@pytest.fixture
def recorded_app(provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """An app whose ledger holds 3 calls by u1 (org1) and 2 by u2 (org2)."""
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    app = make_app({"PAYI_LEDGER": str(tmp_path / "app-ledger.sqlite3")})
    payi = PayiTracking(app)
    payi.account_loader(org_of_current_user)
    client = openai_for(provider)

    app.register_blueprint(usage_blueprint(allow=is_admin), url_prefix="/admin/payi")

    @app.get("/ask")
    @payi_web.track(use_case_name="ask")
    def ask() -> str:
        client.chat.completions.create(**CHAT)
        return "ok"

    for user, calls in (("u1", 3), ("u2", 2)):
        web = app.test_client()
        web.get(f"/login/{user}")
        for _ in range(calls):
            assert web.get("/ask").status_code == 200
    assert payi_web.flush(10)
    return app


def test_report_reads_the_apps_ledger_with_the_same_options(recorded_app: Flask) -> None:
    result = _run(recorded_app, "report", "--by", "user_id,account_name", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["db"].endswith("app-ledger.sqlite3")
    groups = {(g["user_id"], g["account_name"]): g["calls"] for g in report["groups"]}
    assert groups == {("u1", "org1"): 3, ("u2", "org2"): 2}
    assert report["total"]["calls"] == 5 and report["total"]["estimated_cost_usd"] is None

    priced = json.loads(
        _run(recorded_app, "report", "--by", "model", "--format", "json", "--price", "gpt-4o-mini=1,2").output
    )
    assert priced["total"]["estimated_cost_usd"] > 0
    rows = list(csv.DictReader(io.StringIO(_run(recorded_app, "report", "--format", "csv").output)))
    assert sum(int(r["calls"]) for r in rows) == 5
    table = _run(recorded_app, "report", "--since", "24h").output
    assert "u1" in table and "ask" in table


def test_report_errors(recorded_app: Flask, tmp_path: Path) -> None:
    bad = _run(recorded_app, "report", "--by", "colour")
    assert bad.exit_code == 2 and "--by" in bad.output
    missing = _run(recorded_app, "report", "--db", str(tmp_path / "nope.sqlite3"))
    assert missing.exit_code == 1 and "nope.sqlite3" in missing.output
    usage = _run(recorded_app, "report", "--help")
    assert usage.exit_code == 0
    for option in ("--db", "--by", "--since", "--format", "--price"):
        assert option in usage.output
    assert "payi" in recorded_app.test_cli_runner().invoke(args=["--help"]).output


def test_usage_page_blueprint_is_protected_by_the_apps_callable(recorded_app: Flask) -> None:
    web = recorded_app.test_client()
    assert web.get("/admin/payi/").status_code == 403  # anonymous
    web.get("/login/u2")
    assert web.get("/admin/payi/").status_code == 403
    web.get("/login/u1")
    page = web.get("/admin/payi/?since=7d")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "app-ledger.sqlite3" in html and "<td>u1</td>" in html and "<td>org2</td>" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    bad = web.get("/admin/payi/?since=yesterday")
    assert bad.status_code == 200 and "neither a duration" in bad.get_data(as_text=True)


def test_usage_blueprint_arguments() -> None:
    with pytest.raises(TypeError, match="allow is required"):
        usage_blueprint(None)  # type: ignore[arg-type]
    bp = usage_blueprint("tests.flask.conftest:org_of_current_user", name="usage2")
    assert bp.name == "usage2"
    with pytest.raises(ValueError, match="cannot import"):
        usage_blueprint("no_such_module_xyz:allow")


@needs_chromium
def test_headless_chromium_renders_the_served_usage_page(recorded_app: Flask, tmp_path: Path) -> None:
    import threading

    from flask import request
    from werkzeug.serving import make_server

    app = Flask("usage")
    app.config.update(PAYI_LEDGER=recorded_app.config["PAYI_LEDGER"])
    PayiTracking(app)
    app.register_blueprint(usage_blueprint(allow=lambda: request.remote_addr == "127.0.0.1"), url_prefix="/u")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        dom = dump_dom(f"http://127.0.0.1:{httpd.server_port}/u/", tmp_path / "profile")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert '<table id="usage-by-user">' in dom and "<td>u1</td>" in dom and "<td>org2</td>" in dom
    assert '<svg id="tokens-chart"' in dom
