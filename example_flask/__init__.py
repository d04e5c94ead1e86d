"""The example Flask app (`make demo-flask`): `flask --app example_flask run`.

An application factory, Flask-Login users in two accounts, one blueprint of GenAI pages, and
the local ledger's usage page.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, current_app
from flask_login import current_user

from examples_shared import genai
from payi_web.flask import PayiTracking, usage_blueprint

from . import users
from .assistant import bp as assistant

payi = PayiTracking()


def logged_in() -> bool:
    """Who may open the usage page: in this demo, every logged-in user (others go to the login page)."""
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())  # type: ignore[attr-defined]
    return True


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    backend = genai.select_backend()  # the offline demo model unless OPENAI_API_KEY is set
    app.config.update(
        # A demo on 127.0.0.1: a fixed key is fine here, never in production.
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "example-flask-demo-only-not-a-secret"),
        DEMO_BACKEND=backend,
        # The user id is Flask-Login's (the username here); the account is the user's attribute.
        PAYI_ACCOUNT_NAME="example_flask.users:current_account",
        PAYI_LIMIT_IDS=["demo-monthly-cap"],
        # Keep the local ledger (./payi_ledger.sqlite3, or $PAYI_LEDGER) even with a Pay-i API
        # key: the usage page and `python -m payi_web report` read it.
        PAYI_LEDGER=True,
        PAYI_PRICES=genai.PRICES,
        **{f"PAYI_{key}": value for key, value in genai.payi_settings(backend).items()},
    )
    app.config.update(config or {})
    users.init_app(app)  # Flask-Login, the demo users, /login and /logout
    payi.init_app(app)
    app.register_blueprint(assistant)
    label = genai.LABELS[backend]
    usage = usage_blueprint(allow=logged_in, title=f"Pay-i usage: payi-web Flask demo ({label})")
    app.register_blueprint(usage, url_prefix="/usage")

    @app.context_processor
    def demo() -> dict[str, Any]:
        # Every page says which model answers ("offline demo model" when offline).
        return {"backend_label": label, "offline": backend == genai.OFFLINE}

    return app
