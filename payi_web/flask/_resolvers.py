"""A Flask request's resolvers: the user id and account name as `Deferred` values, CONTEXT's fields.

A resolver takes no arguments and reads `flask.request`, `g` or `current_user`. It runs at the
request's first tracked GenAI call, which may come from a thread-pool worker (the tracking
context carried by `bind_context()`): there it runs with the request's own contexts set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .._compat.flask import (
    app_context,
    logged_in_user,
    proxied_object,
    request_context,
    reset_contexts,
    set_contexts,
)
from ..integration import Deferred
from ..web import context_failed, context_fields, resolver_deferred

__all__ = ["Resolver", "deferred", "flask_login", "flask_login_user_id", "request_context_fields"]

Resolver = Callable[[], Any]


def deferred(resolve: Resolver, name: str, request_ctx: Any, app_ctx: Any) -> Deferred:
    """The value `resolve` gives, computed on first use, in this request's contexts."""
    return resolver_deferred(_in_this_request(resolve, request_ctx, app_ctx), name=name, is_async=False)


def _in_this_request(resolve: Resolver, request_ctx: Any, app_ctx: Any) -> Resolver:
    """`resolve`, made to see the current request's contexts when it runs in a thread without them
    (set, not pushed: no hook or teardown runs, and the request thread's contexts are untouched)."""
    if request_ctx is None or app_ctx is None:
        return resolve
    return functools.partial(_resolve_in_request, resolve, request_ctx, app_ctx)


def _resolve_in_request(resolve: Resolver, request_ctx: Any, app_ctx: Any) -> Any:
    if request_context() is not None:
        return resolve()
    tokens = set_contexts(app_ctx, request_ctx)
    try:
        return resolve()
    finally:
        reset_contexts(tokens)


def request_context_fields(context: Resolver, name: str) -> dict[str, Any]:
    """CONTEXT's fields for this request; a failure is logged once and the request goes on without them."""
    try:
        return context_fields(name, context())
    except Exception:
        context_failed(name)
        return {}


_FLASK_LOGIN: Any = None


def flask_login() -> Any:
    """The `flask_login` module, or None when it is not installed."""
    global _FLASK_LOGIN
    if _FLASK_LOGIN is None:
        try:
            import flask_login  # type: ignore[import-untyped]
        except ImportError:
            _FLASK_LOGIN = False
        else:
            _FLASK_LOGIN = flask_login
    return _FLASK_LOGIN or None


def flask_login_user_id() -> str | None:
    """The default user id: Flask-Login's `current_user.get_id()` when authenticated."""
    # Once loaded (the view's `current_user` usually did it), read Flask-Login's user for this
    # request directly rather than through `current_user`, whose every attribute goes through
    # two LocalProxy lookups (~5 µs a request). Not loaded yet: `current_user` loads it.
    app_ctx = app_context()
    user = None if app_ctx is None else logged_in_user(app_ctx)
    if user is None:
        user = proxied_object(flask_login().current_user)
        if user is None:
            return None
    if not user.is_authenticated:
        return None
    user_id = user.get_id()
    return None if user_id is None else str(user_id)
