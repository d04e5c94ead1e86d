"""The private parts of Flask, Werkzeug and Flask-Login that payi-web's Flask layer reads."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from flask import globals as _globals

from . import MissingPrivate

__all__ = [
    "app_context",
    "logged_in_user",
    "proxied_object",
    "request_context",
    "reset_contexts",
    "set_contexts",
]


def _context_var(name: str) -> ContextVar[Any]:
    var = getattr(_globals, name, None)
    if not isinstance(var, ContextVar):
        raise MissingPrivate(f"flask.globals has no {name} context variable")
    return var


# Flask's own context variables: a hook reads the request context through them rather than
# through the `request`/`g` proxies (a few µs a request), and a resolver run in a worker
# thread gets the request's contexts set (not pushed: no hook or teardown runs).
_cv_app = _context_var("_cv_app")
_cv_request = _context_var("_cv_request")


def request_context() -> Any:
    """The request context of this thread or task (`flask.globals._cv_request`), or None."""
    return _cv_request.get(None)


def app_context() -> Any:
    """The app context of this thread or task, or None."""
    return _cv_app.get(None)


def set_contexts(app_ctx: Any, request_ctx: Any) -> tuple[Token[Any], Token[Any]]:
    """Make these app and request contexts the current ones, without pushing them."""
    return _cv_app.set(app_ctx), _cv_request.set(request_ctx)


def reset_contexts(tokens: tuple[Token[Any], Token[Any]]) -> None:
    app_token, request_token = tokens
    _cv_request.reset(request_token)
    _cv_app.reset(app_token)


def logged_in_user(app_ctx: Any) -> Any:
    """Flask-Login's user for this request once it is loaded (`g._login_user`), else None."""
    return getattr(app_ctx.g, "_login_user", None)


def proxied_object(proxy: Any) -> Any:
    """What a Werkzeug `LocalProxy` (`current_user`, `current_app`) stands for now."""
    get = getattr(proxy, "_get_current_object", None)
    if get is None:
        raise MissingPrivate(
            f"{type(proxy).__module__}.{type(proxy).__qualname__} has no _get_current_object()"
        )
    return get()
