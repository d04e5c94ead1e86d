"""`PayiTracking`: the Flask extension that gives every request its own tracking scope.

Flask's `PAYI_*` config keys are the shared settings model's keys with a prefix
(`PAYI_USER_ID` -> `PayiSettings.USER_ID`); `init_app` validates them and applies the
process-wide part (`configure()` and `instrument()`). What can differ between two apps of one
process lives in `app.extensions["payi"]`: the resolvers, the excluded paths and the context
defaults, which seed each request's scope rather than the process root.

A request's scope is entered by the first `before_request` hook and left at `teardown_request`.
A streamed body is produced after the view returned, often after the request context ended: it
is wrapped so that every step runs with the request's frame (or the frame of the `@track`
function that returned it) current, and the deferred user and account it needs are resolved
before the request context ends.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar

from flask import Flask, Response, current_app
from flask.globals import _cv_app, _cv_request
from flask.sansio.blueprints import Blueprint

from .._fields import Deferred, validate_fields
from .._log import warn_once
from ..config import Config, current_config
from ..context import EMPTY_FRAME, Frame, current_var, derive
from ..settings import PayiSettings, SettingsError, apply_settings, load_settings
from ..tracking import runs_in_its_own_scope
from ._streaming import _register_result_types, _RequestScope, _ScopedBody

__all__ = ["PREFIX", "PayiState", "PayiTracking"]

PREFIX: Final = "PAYI_"
EXTENSION_KEY: Final = "payi"
_ENVIRON_KEY: Final = "payi_web.scope"
_RESOLVER_KEYS: Final = ("USER_ID", "ACCOUNT_NAME", "CONTEXT")

Resolver = Callable[[], Any]
F = TypeVar("F", bound=Callable[..., Any])


def describe(fn: object) -> str:
    """`module:qualname` of a callable, for messages and `flask payi check`."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}:{name}" if module else str(name)


def _check_resolver(key: str, fn: object) -> None:
    """A resolver runs in the request's thread with no arguments: say so at start-up, not per request."""
    if not callable(fn):
        raise SettingsError(key, f"must be a callable or a dotted path string, got {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise SettingsError(
            key, f"{describe(fn)} is an async function; Flask resolvers are plain functions with no arguments"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        signature.bind()
    except TypeError:
        raise SettingsError(
            key,
            f"{describe(fn)}{signature} must take no arguments (read flask.request, g or current_user)",
        ) from None


def load_flask_settings(config: Mapping[str, Any]) -> PayiSettings:
    """The `PAYI_*` keys of a Flask config, validated by the shared model; errors name the `PAYI_` key."""
    raw = {key[len(PREFIX) :]: value for key, value in config.items() if key.startswith(PREFIX)}
    try:
        settings = load_settings(raw)
    except SettingsError as exc:
        raise _prefixed(exc) from None
    for key in _RESOLVER_KEYS:
        fn = getattr(settings, key)
        if fn is not None:
            _check_resolver(PREFIX + key, fn)
    return settings


def _prefixed(exc: SettingsError) -> SettingsError:
    """The shared model's error, spoken in Flask's key names (`USRE_ID` -> `PAYI_USRE_ID`)."""
    if exc.key.startswith(PREFIX) or exc.key == "PAYI":
        return exc
    message = str(exc).removeprefix(f"{exc.key}: ")
    if exc.key not in PayiSettings.model_fields and "unknown setting" in message:
        import difflib

        close = difflib.get_close_matches(exc.key.upper(), PayiSettings.model_fields, n=1)
        hint = f" (did you mean {PREFIX + close[0]!r}?)" if close else ""
        valid = ", ".join(PREFIX + name for name in PayiSettings.model_fields)
        message = f"unknown setting{hint}; valid: {valid}"
    return SettingsError(PREFIX + exc.key, message)


# --- per-app state ------------------------------------------------------------------------------


@dataclass(eq=False)
class PayiState:
    """What `init_app` keeps in `app.extensions["payi"]`."""

    extension: PayiTracking
    settings: PayiSettings
    # The app's context defaults as a frame: every request's scope derives from it, so two apps
    # with different defaults in one process each get their own (the process root is the last app's).
    root: Frame
    # The process-wide configuration this app applied; another app initialised later replaces it.
    config: Config
    # Resolver -> its name in log messages (computed once, not per request).
    _names: dict[Any, str] = field(default_factory=dict, repr=False)
    _seeding_cache: _Seeding | None = field(default=None, repr=False)

    def user_id_resolver(self, app: Flask | None = None) -> tuple[Resolver | None, str]:
        """The callable resolving a request's user id, and where it comes from."""
        if self.settings.USER_ID is not None:
            return self.settings.USER_ID, "PAYI_USER_ID"
        if self.extension._user_id_loader is not None:
            return self.extension._user_id_loader, "@user_id_loader"
        # Flask-Login's current_user needs a LoginManager on the app (it may be set up after us).
        login_manager = getattr(current_app if app is None else app, "login_manager", None)
        if login_manager is not None and _flask_login() is not None:
            return _flask_login_user_id, "Flask-Login"
        return None, "none"

    def account_resolver(self) -> tuple[Resolver | None, str]:
        if self.settings.ACCOUNT_NAME is not None:
            return self.settings.ACCOUNT_NAME, "PAYI_ACCOUNT_NAME"
        if self.extension._account_loader is not None:
            return self.extension._account_loader, "@account_loader"
        return None, "none"

    def context_resolver(self) -> tuple[Resolver | None, str]:
        if self.settings.CONTEXT is not None:
            return self.settings.CONTEXT, "PAYI_CONTEXT"
        if self.extension._context_loader is not None:
            return self.extension._context_loader, "@context_loader"
        return None, "none"

    def _name(self, fn: Any, origin: str) -> str:
        try:
            return self._names[fn]
        except (KeyError, TypeError):
            name = f"{origin} {describe(fn)}"
            with contextlib.suppress(TypeError):  # an unhashable callable is named each time
                self._names[fn] = name
            return name

    def _seeding(self, app: Flask | None) -> _Seeding:
        """The resolvers of this app's requests, named: decided at its first request (its
        LoginManager is set up by then), again after the extension registers a loader."""
        seeding = self._seeding_cache
        if seeding is None or seeding.generation != self.extension._generation:
            named: list[tuple[Resolver, str] | None] = []
            for (resolve, origin), suffix in (
                (self.user_id_resolver(app), " resolver"),
                (self.account_resolver(), " resolver"),
                (self.context_resolver(), ""),
            ):
                named.append(None if resolve is None else (resolve, self._name(resolve, origin + suffix)))
            seeding = self._seeding_cache = _Seeding(self.extension._generation, *named)
        return seeding

    def request_frame(self, app: Flask | None = None) -> Frame:
        """A new request's frame: deferred user and account (resolved on first use), CONTEXT's fields."""
        seeding = self._seeding(app)
        args: dict[str, Any] = {}
        user, account = seeding.user_id, seeding.account_name
        if user is not None or account is not None:
            request_ctx, app_ctx = _cv_request.get(None), _cv_app.get(None)
            if user is not None:
                args["user_id"] = _deferred(user, request_ctx, app_ctx)
            if account is not None:
                args["account_name"] = _deferred(account, request_ctx, app_ctx)
        if seeding.context is not None:
            args.update(_context_fields(*seeding.context))
        return Frame.child(self.root, args)


class _Seeding(NamedTuple):
    generation: int
    user_id: tuple[Resolver, str] | None
    account_name: tuple[Resolver, str] | None
    context: tuple[Resolver, str] | None


def _deferred(named: tuple[Resolver, str], request_ctx: Any, app_ctx: Any) -> Deferred:
    resolve, name = named
    return Deferred(_in_this_request(resolve, request_ctx, app_ctx), name=name)


def _in_this_request(resolve: Resolver, request_ctx: Any, app_ctx: Any) -> Resolver:
    """`resolve`, made to see the current request's contexts when it runs in a thread without them.

    A GenAI call from a thread-pool worker (the tracking context carried by `bind_context` or
    `patch_thread_pool()`) may be the request's first: the user and account are then resolved
    in that thread, where `flask.request`, `g` and `current_user` do not exist. There the
    resolver runs with the request's own app and request contexts set (not pushed: no hook or
    teardown runs, and the request thread's contexts are untouched).
    """
    if request_ctx is None or app_ctx is None:
        return resolve
    return functools.partial(_resolve_in_request, resolve, request_ctx, app_ctx)


def _resolve_in_request(resolve: Resolver, request_ctx: Any, app_ctx: Any) -> Any:
    if _cv_request.get(None) is not None:
        return resolve()
    app_token = _cv_app.set(app_ctx)
    request_token = _cv_request.set(request_ctx)
    try:
        return resolve()
    finally:
        _cv_request.reset(request_token)
        _cv_app.reset(app_token)


def _context_fields(context: Resolver, name: str) -> dict[str, Any]:
    try:
        fields = context()
        if fields is None:
            return {}
        if not isinstance(fields, Mapping):
            raise TypeError(f"must return a dict of context fields, got {type(fields).__name__}")
        return validate_fields(name, fields)  # the caller copies it
    except Exception:
        warn_once(
            f"flask-context:{name}",
            "payi_web: %s failed; the request goes on without its fields",
            name,
            exc_info=True,
        )
        return {}


_FLASK_LOGIN: Any = None


def _flask_login() -> Any:
    global _FLASK_LOGIN
    if _FLASK_LOGIN is None:
        try:
            import flask_login  # type: ignore[import-untyped]
        except ImportError:
            _FLASK_LOGIN = False
        else:
            _FLASK_LOGIN = flask_login
    return _FLASK_LOGIN or None


def _flask_login_user_id() -> str | None:
    """The default user id: Flask-Login's `current_user.get_id()` when authenticated."""
    # Once loaded (the view's `current_user` usually did it), Flask-Login's user for this request
    # is `g._login_user`: read there rather than through `current_user`, whose every attribute
    # goes through two LocalProxy lookups (~5 µs a request). Not loaded yet: `current_user` loads it.
    app_ctx = _cv_app.get(None)
    user = None if app_ctx is None else getattr(app_ctx.g, "_login_user", None)
    if user is None:
        user = _flask_login().current_user._get_current_object()
        if user is None:
            return None
    if not user.is_authenticated:
        return None
    user_id = user.get_id()
    return None if user_id is None else str(user_id)


# The hooks below run on every request: they reach the request context through Flask's context
# variable rather than the `current_app`/`request`/`g` proxies (a few microseconds saved), and
# keep the scope in the WSGI environ of the request.


def _enter_request() -> None:
    ctx = _cv_request.get()
    app = ctx.app
    state = app.extensions.get(EXTENSION_KEY)
    environ = ctx.request.environ
    if not isinstance(state, PayiState) or _ENVIRON_KEY in environ:
        return
    settings = state.settings
    if settings.EXCLUDE_PATHS and settings.is_excluded(ctx.request.path):
        return
    frame = state.request_frame(app)
    tracked = state.extension._blueprints
    if tracked:
        blueprints = app.blueprints
        for name in reversed(ctx.request.blueprints):  # outermost first
            args = tracked.get(blueprints.get(name))  # type: ignore[arg-type]
            if args is not None:
                frame = Frame.child(frame, args)
    environ[_ENVIRON_KEY] = _RequestScope(frame, current_var.set(frame))


def _bind_body(response: Response) -> Response:
    scope = _cv_request.get().request.environ.get(_ENVIRON_KEY)
    if scope is None or not response.is_streamed or response.direct_passthrough:
        return response
    body = response.response
    if runs_in_its_own_scope(body):
        # A tracked generator makes its own frame current at every step and closes in it:
        # wrapped, each chunk would switch frames twice.
        scope.body = body
        return response
    if isinstance(body, _ScopedBody) and body.scope is None:
        body.scope = scope  # the frame of the @track function that returned it wins
    elif not isinstance(body, _ScopedBody):
        body = response.response = _ScopedBody(body, scope.frame, scope)
    scope.body = body
    return response


def _leave_request(exc: BaseException | None) -> None:
    scope = _cv_request.get().request.environ.pop(_ENVIRON_KEY, None)
    if isinstance(scope, _RequestScope):
        try:
            scope.resolve_for_body()
        finally:
            scope.body = None  # the body refers to its scope: no cycle left to the garbage collector
            scope.end()


# --- the extension ------------------------------------------------------------------------------


class PayiTracking:
    """Pay-i tracking for Flask: `PayiTracking(app)`, or `payi = PayiTracking()` then `payi.init_app(app)`.

    One object may serve several apps (an application factory); each app's settings and state
    live in `app.extensions["payi"]` (a `PayiState`). Resolvers registered with the decorators
    belong to this object and apply to every app it initialises, unless that app's config
    names its own (`PAYI_USER_ID`, `PAYI_ACCOUNT_NAME`, `PAYI_CONTEXT` win).
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._user_id_loader: Resolver | None = None
        self._account_loader: Resolver | None = None
        self._context_loader: Resolver | None = None
        self._generation = 0  # bumped when a loader is registered: the apps' requests pick it up
        self._blueprints: dict[Blueprint, Mapping[str, Any]] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the app's `PAYI_*` keys, apply them, and seed a scope in each of its requests.

        Raises `SettingsError` (a `ValueError`) naming the key for an unknown key or a bad value;
        the app then gets no state and no command (its hooks, if registered, do nothing). The
        process-wide part of the settings (API key, base URL, header hosts, ledger,
        instrumentation, and the defaults outside requests) is that of the app initialised last.
        """
        settings = load_flask_settings(app.config)
        root = derive(EMPTY_FRAME, settings.context_defaults())
        before = app.before_request_funcs.setdefault(None, [])
        if _enter_request not in before:
            # Registered early, these run last of the app's after_request and teardown hooks.
            # (Flask refuses them once the app has served a request: before anything changed.)
            # They do nothing until the app's state is in place, below.
            app.after_request(_bind_body)
            app.teardown_request(_leave_request)
            # First of all before_request hooks, so that the others run in the request's scope too.
            before.insert(0, _enter_request)
        try:
            apply_settings(settings)
        except SettingsError as exc:
            raise _prefixed(exc) from None
        _register_result_types(app)
        from .cli import payi_cli

        if "payi" not in app.cli.commands:
            app.cli.add_command(payi_cli)
        app.extensions[EXTENSION_KEY] = PayiState(self, settings, root, current_config())

    # --- resolvers, decorator style -------------------------------------------------------------

    def user_id_loader(self, fn: F) -> F:
        """Register the function giving the request's user id (no arguments; `str` or `None`)."""
        _check_resolver("user_id_loader", fn)
        self._user_id_loader = fn
        self._generation += 1
        return fn

    def account_loader(self, fn: F) -> F:
        """Register the function giving the request's account name (no arguments; `str` or `None`)."""
        _check_resolver("account_loader", fn)
        self._account_loader = fn
        self._generation += 1
        return fn

    def context_loader(self, fn: F) -> F:
        """Register the function giving further context fields for each request (a dict, like `track()`'s)."""
        _check_resolver("context_loader", fn)
        self._context_loader = fn
        self._generation += 1
        return fn

    # --- blueprints -----------------------------------------------------------------------------

    def track_blueprint(self, blueprint: Blueprint, **fields: Any) -> Blueprint:
        """Give every view of `blueprint` these context fields (e.g. a default `use_case_name`).

        They form a scope between the request's and the view's: a view's own `@track` wins by
        the inheritance rules (a new use case name starts a new use case). Nested blueprints
        apply outermost first. Returns the blueprint.
        """
        if not isinstance(blueprint, Blueprint):
            raise TypeError(f"track_blueprint(): expected a flask Blueprint, got {type(blueprint).__name__}")
        self._blueprints[blueprint] = dict(validate_fields("track_blueprint()", fields))
        return blueprint
