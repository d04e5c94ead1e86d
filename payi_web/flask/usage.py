"""The read-only usage page, as a blueprint a Flask app registers behind a check of its own.

from payi_web.flask import usage_blueprint

app.register_blueprint(
    usage_blueprint(allow=lambda: current_user.is_authenticated and current_user.is_admin),
    url_prefix="/admin/payi",
)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from ..settings import import_callable
from .extension import EXTENSION_KEY, PayiState

__all__ = ["usage_blueprint"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def usage_blueprint(
    allow: Callable[[], object] | str,
    *,
    name: str = "payi_usage",
    db: str | os.PathLike[str] | None = None,
    title: str = "Pay-i usage",
) -> Blueprint:
    """A blueprint serving the ledger's usage page at its root (`?since=24h|7d|30d|ISO-date`).

    `allow` (a callable taking no arguments, or its import string) runs in the request context
    before anything is read: a false result answers 403; it may also raise (`abort(401)`, a
    redirect through `abort(redirect(...))`). It is required: the page shows every user's and
    account's usage. The ledger is `db`, else the app's `PAYI_LEDGER` by the usual rule.
    """
    if allow is None:
        raise TypeError("usage_blueprint(): allow is required (who may see every user's usage?)")
    check: Callable[[], object] = import_callable(allow) if isinstance(allow, str) else allow
    if not callable(check):
        raise TypeError(f"usage_blueprint(): allow must be callable, got {type(allow).__name__}")
    blueprint = Blueprint(name, __name__)

    @blueprint.get("/")
    def usage() -> Any:
        if not check():
            abort(403)
        from ..ledger import ledger_path, render_usage_page

        state = current_app.extensions.get(EXTENSION_KEY)
        path: str | os.PathLike[str] | None = db
        prices = None
        if isinstance(state, PayiState):
            path = path or ledger_path(state.settings.LEDGER)
            prices = dict(state.settings.PRICES)
        page = render_usage_page(path, since=request.args.get("since") or None, prices=prices, title=title)
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return blueprint
