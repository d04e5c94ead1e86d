"""The harness's Flask app: Flask-Login users, `POST /login`, `/health`, `/chat/<plan>/` (sync plans).

Served by gunicorn's gthread worker: `gunicorn bench.load.flask_app:app -k gthread`. Users live
in memory (`PAYI_LOAD_USERS` of them, named and grouped into accounts as the Django app's);
a login checks the password and stores the user in Flask's signed session cookie. With payi-web
on, `PayiTracking` gives each request its scope (user from Flask-Login, account from the user,
request id from a header), and `patch_thread_pool()` carries it into the view's thread pool.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask_login
from flask import Flask, Response, abort, jsonify, request

from bench.load import genai
from bench.load.plans import ENV_PROVIDER, ENV_USERS, PASSWORD, SYNC_PLANS, account, use_case, username


class User(flask_login.UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str, account_name: str) -> None:
        self.id = user_id
        self.account = account_name


USERS = {username(n): User(username(n), account(n)) for n in range(int(os.environ.get(ENV_USERS, "64")))}

app = Flask(__name__)
app.config.update(SECRET_KEY="payi-web-load-harness-only")
login_manager = flask_login.LoginManager(app)
login_manager.user_loader(USERS.get)

pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="load-view-pool")

if genai.PAYI_ON:
    from payi_web.flask import PayiTracking

    app.config.update(
        PAYI_HEADER_HOSTS=[os.environ[ENV_PROVIDER]],
        PAYI_BASE_URL="http://127.0.0.1:9",  # nothing goes to Pay-i: a closed port, and no API key
        PAYI_LEDGER=False,
        PAYI_EXCLUDE_PATHS=[r"^/health"],
    )
    payi = PayiTracking(app)

    @payi.account_loader
    def account_of_current_user() -> str | None:
        user = flask_login.current_user
        return user.account if user.is_authenticated else None  # type: ignore[no-any-return]

    @payi.context_loader
    def request_id() -> dict[str, Any]:
        rid = request.headers.get("X-Request-Id")
        return {"request_properties": {"request_id": rid}} if rid else {}

    genai.patch_thread_pool()


@app.post("/login")
def login() -> Any:
    user = USERS.get(request.form.get("username", ""))
    if user is None or request.form.get("password") != PASSWORD:
        abort(403)
    flask_login.login_user(user)
    return jsonify(user_id=user.id, account=user.account)


@app.get("/health")
def health() -> str:
    return "ok"


def _view(plan: str) -> Any:
    @genai.track(use_case_name=use_case(plan))
    def chat() -> Any:
        if not flask_login.current_user.is_authenticated:
            abort(401)
        request_id = request.headers["X-Request-Id"]
        answers: list[str] = []
        for kind in plan:
            if kind == "y":
                answers.append(genai.ask(request_id, kind))
            elif kind == "t":  # patch_thread_pool(): submit() carries the context
                with genai.track_context(request_properties={"call": kind}):
                    future = pool.submit(genai.ask_in_scope, request_id, kind)
                answers.append(future.result())
        if plan.endswith("s"):
            return Response(genai.stream(request_id, answers), mimetype="text/plain")
        return Response("\n".join(answers), mimetype="text/plain")

    chat.__name__ = f"chat_{plan}"
    return chat


for _plan in SYNC_PLANS:
    app.add_url_rule(f"/chat/{_plan}/", view_func=_view(_plan))
