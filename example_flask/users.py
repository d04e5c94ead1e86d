"""The demo's users (Flask-Login), the login pages, and the account resolver.

alice and bob work for account "acme", carol for "globex". They are created when the app
starts (an in-memory store, for the demo: a real app would keep them in its database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

# (username, password, account). Passwords for a local demo only.
DEMO_USERS = [
    ("alice", "alice-demo", "acme"),
    ("bob", "bob-demo", "acme"),
    ("carol", "carol-demo", "globex"),
]


@dataclass
class User(UserMixin):  # type: ignore[misc]
    id: str  # Flask-Login's user id, and the user id payi-web sends
    account: str  # what PAYI_ACCOUNT_NAME reads
    password_hash: str

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


USERS: dict[str, User] = {}


def create_demo_users() -> None:
    for username, password, account in DEMO_USERS:
        if username not in USERS:
            USERS[username] = User(username, account, generate_password_hash(password))


def current_account() -> str | None:
    """`PAYI_ACCOUNT_NAME`: the logged-in user's account (called at the request's first GenAI call)."""
    return current_user.account if current_user.is_authenticated else None  # type: ignore[no-any-return]


def _basic_auth_user() -> User | None:
    """`curl -u alice:alice-demo ...`: HTTP Basic credentials log this one request in."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    user = USERS.get(auth.username or "")
    return user if user is not None and user.check_password(auth.password or "") else None


def _unauthorized() -> Any:
    if request.authorization is not None:
        return Response("Wrong username or password.\n", 401, mimetype="text/plain")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def init_app(app: Flask) -> None:
    create_demo_users()
    manager = LoginManager(app)
    manager.user_loader(USERS.get)
    manager.request_loader(lambda _request: _basic_auth_user())
    manager.unauthorized_handler(_unauthorized)
    app.register_blueprint(auth)


auth = Blueprint("auth", __name__)


@auth.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = False
    if request.method == "POST":
        user = USERS.get(request.form.get("username", ""))
        if user is not None and user.check_password(request.form.get("password", "")):
            login_user(user)
            target = request.args.get("next", "")
            # Only a path of this site: never an open redirect.
            return redirect(target if target.startswith("/") and not target.startswith("//") else "/")
        error = True
    return render_template("login.html", demo_users=DEMO_USERS, error=error), 401 if error else 200


@auth.post("/logout")
def logout() -> Any:
    logout_user()
    return redirect(url_for("auth.login"))
