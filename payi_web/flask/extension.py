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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeVar

from flask import Flask, Response, current_app
from flask.sansio.blueprints import Blueprint

from .. import Config, current_config
from .._compat.flask import app_context, request_context
from ..integration import Frame, check_fields, defaults_frame, enter_frame, is_bound, scope_frame
from ..settings import PayiSettings, SettingsError, apply_settings
from ._resolvers import Resolver, deferred, flask_login, flask_login_user_id, request_context_fields
from ._settings import PREFIX, check_resolver, describe, load_flask_settings, prefixed
from ._streaming import FlaskIntegration, _RequestScope, _ScopedBody

__all__ = ["PREFIX", "PayiState", "PayiTracking", "describe", "load_flask_settings"]

EXTENSION_KEY: Final = "payi"
_ENVIRON_KEY: Final = "payi_web.scope"
# The request resolvers: (settings key, the decorator registering one, the suffix of its name in logs).
_RESOLVERS: Final = (
    ("USER_ID", "@user_id_loader", " resolver"),
    ("ACCOUNT_NAME", "@account_loader", " resolver"),
    ("CONTEXT", "@context_loader", ""),
)

F = TypeVar("F", bound=Callable[..., Any])


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

    def resolver(self, key: str, app: Flask | None = None) -> tuple[Resolver | None, str]:
        """The callable resolving `key` (USER_ID, ACCOUNT_NAME, CONTEXT) for a request, and its origin."""
        configured = getattr(self.settings, key)
        if configured is not None:
            return configured, PREFIX + key
        loader = self.extension._loaders.get(key)
        if loader is not None:
            return loader, next(origin for k, origin, _ in _RESOLVERS if k == key)
        if key == "USER_ID":
            # Flask-Login's current_user needs a LoginManager on the app (it may be set up after us).
            login_manager = getattr(current_app if app is None else app, "login_manager", None)
            if login_manager is not None and flask_login() is not None:
                return flask_login_user_id, "Flask-Login"
        return None, "none"

    def user_id_resolver(self, app: Flask | None = None) -> tuple[Resolver | None, str]:
        return self.resolver("USER_ID", app)

    def account_resolver(self) -> tuple[Resolver | None, str]:
        return self.resolver("ACCOUNT_NAME")

    def context_resolver(self) -> tuple[Resolver | None, str]:
        return self.resolver("CONTEXT")

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
            for key, _, suffix in _RESOLVERS:
                resolve, origin = self.resolver(key, app)
                named.append(None if resolve is None else (resolve, self._name(resolve, origin + suffix)))
            seeding = self._seeding_cache = _Seeding(self.extension._generation, *named)
        return seeding

    def request_frame(self, app: Flask | None = None) -> Frame:
        """A new request's frame: deferred user and account (resolved on first use), CONTEXT's fields."""
        seeding = self._seeding(app)
        args: dict[str, Any] = {}
        user, account = seeding.user_id, seeding.account_name
        if user is not None or account is not None:
            request_ctx, app_ctx = request_context(), app_context()
            if user is not None:
                args["user_id"] = deferred(*user, request_ctx, app_ctx)
            if account is not None:
                args["account_name"] = deferred(*account, request_ctx, app_ctx)
        if seeding.context is not None:
            args.update(request_context_fields(*seeding.context))
        return scope_frame(args, self.root, where="PAYI_CONTEXT")


class _Seeding(NamedTuple):
    generation: int
    user_id: tuple[Resolver, str] | None
    account_name: tuple[Resolver, str] | None
    context: tuple[Resolver, str] | None


# The hooks below run on every request: they reach the request context through Flask's context
# variable rather than the `current_app`/`request`/`g` proxies (a few microseconds saved), and
# keep the scope in the WSGI environ of the request.


def _enter_request() -> None:
    ctx = request_context()
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
            args = tracked.get(blueprints.get(name))
            if args is not None:
                frame = scope_frame(args, frame, where="track_blueprint()")
    environ[_ENVIRON_KEY] = _RequestScope(frame, enter_frame(frame))


def _bind_body(response: Response) -> Response:
    scope = request_context().request.environ.get(_ENVIRON_KEY)
    if scope is None or not response.is_streamed or response.direct_passthrough:
        return response
    body = response.response
    if is_bound(body):
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
    scope = request_context().request.environ.pop(_ENVIRON_KEY, None)
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
        self._loaders: dict[str, Resolver] = {}  # settings key -> the decorated resolver
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
        root = defaults_frame(settings.context_defaults(), where="settings")
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
            raise prefixed(exc) from None
        FlaskIntegration.setup()
        FlaskIntegration.bind_response_class(app.response_class)
        from .cli import payi_cli

        if "payi" not in app.cli.commands:
            app.cli.add_command(payi_cli)
        app.extensions[EXTENSION_KEY] = PayiState(self, settings, root, current_config())

    # --- resolvers, decorator style -------------------------------------------------------------

    def has_loader(self, key: str) -> bool:
        """Whether a decorator registered the resolver of `key` (USER_ID, ACCOUNT_NAME, CONTEXT)."""
        return key in self._loaders

    def blueprint_fields(self, blueprint: Blueprint) -> Mapping[str, Any] | None:
        """The fields `track_blueprint()` gave `blueprint`, if any."""
        return self._blueprints.get(blueprint)

    def _register(self, key: str, decorator: str, fn: F) -> F:
        check_resolver(decorator, fn)
        self._loaders[key] = fn
        self._generation += 1
        return fn

    def user_id_loader(self, fn: F) -> F:
        """Register the function giving the request's user id (no arguments; `str` or `None`)."""
        return self._register("USER_ID", "user_id_loader", fn)

    def account_loader(self, fn: F) -> F:
        """Register the function giving the request's account name (no arguments; `str` or `None`)."""
        return self._register("ACCOUNT_NAME", "account_loader", fn)

    def context_loader(self, fn: F) -> F:
        """Register the function giving further context fields for each request (a dict, like `track()`'s)."""
        return self._register("CONTEXT", "context_loader", fn)

    # --- blueprints -----------------------------------------------------------------------------

    def track_blueprint(self, blueprint: Blueprint, **fields: Any) -> Blueprint:
        """Give every view of `blueprint` these context fields (e.g. a default `use_case_name`).

        They form a scope between the request's and the view's: a view's own `@track` wins by
        the inheritance rules (a new use case name starts a new use case). Nested blueprints
        apply outermost first. Returns the blueprint.
        """
        if not isinstance(blueprint, Blueprint):
            raise TypeError(f"track_blueprint(): expected a flask Blueprint, got {type(blueprint).__name__}")
        self._blueprints[blueprint] = check_fields(fields, where="track_blueprint()")
        return blueprint
