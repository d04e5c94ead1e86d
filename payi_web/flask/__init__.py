"""Pay-i tracking for Flask: every request gets its own scope, seeded from the app's `PAYI_*` config.

    from flask import Flask
    from payi_web import track
    from payi_web.flask import PayiTracking

    app = Flask(__name__)
    app.config["PAYI_ACCOUNT_NAME"] = "myapp.billing:account_for_request"
    payi = PayiTracking(app)          # or: payi = PayiTracking(); payi.init_app(app)

`flask payi check` prints the effective configuration; `flask payi report` the usage from the
local ledger; `usage_blueprint(allow=...)` serves it as a page.
"""

from __future__ import annotations

from ..settings import SettingsError
from ._streaming import FlaskIntegration
from .extension import PayiState, PayiTracking
from .usage import usage_blueprint

__all__ = ["FlaskIntegration", "PayiState", "PayiTracking", "SettingsError", "usage_blueprint"]
