"""One request's scope: its user id and account name resolved lazily, its CONTEXT fields, and its frame.

`user_id` and `account_name` are `Deferred` values: nothing runs until the first tracked GenAI
call of the request (or a `get_context()`), and then at most once. Each has two paths:

- the sync path (a sync OpenAI client, `get_context()`): the resolver runs in place, unless the
  thread runs an event loop (a sync client called from an async view), where Django forbids
  database access: then it runs in a worker thread, and this thread waits for it;
- the async path (an async client, which awaits `Frame.aresolve()`): the default user id comes
  from `request.auser()`, a sync resolver runs in Django's thread for sync code
  (`sync_to_async`), an `async def` resolver is awaited.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, NamedTuple, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .._compat.django import cached_async_user, is_empty, loaded_object
from ..integration import Deferred, Frame, scope_frame
from ..settings import PayiSettings
from ..web import Runner, context_failed, context_fields, resolver_deferred
from ._home_loop import Home, NotAtHome, home_here, resolve_at_home

__all__ = ["arequest_frame", "request_frame"]

T = TypeVar("T")
_CONTEXT: Final = "PAYI['CONTEXT']"

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _worker_pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="payi-web-resolve")
    return _executor


def _in_worker(fn: Callable[[], T]) -> T:
    from django.db import close_old_connections

    try:
        return fn()
    finally:
        # This thread serves no request: close what the resolver opened, as request_finished would.
        close_old_connections()


def off_the_loop(fn: Callable[[], T]) -> T:
    """`fn()`, run in a worker thread if this thread runs an event loop (no SynchronousOnlyOperation)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    return _worker_pool().submit(_in_worker, fn).result()


def _run_async(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`async_to_sync(fn)(*args)`, in a copy of this context.

    asgiref records its executor in a `Local` of the calling context; left there, it would join
    the request's context and be copied and re-homed at every later sync/async hop of the
    request. A resolver's answer is all that is wanted from it.
    """
    return contextvars.copy_context().run(async_to_sync(fn), *args)


def user_pk(user: Any) -> str | None:
    """The default user id: an authenticated user's primary key as a str; None for anyone else."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = user.pk
    return None if pk is None else str(pk)


def _default_user_id(request: HttpRequest) -> str | None:
    # Whatever `request.user` is now: Django's lazy user, or the user DRF authenticated and set
    # on the HttpRequest inside the view.
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject):
        loaded = loaded_object(user)
        if is_empty(loaded):
            # An async view loaded it with `await request.auser()`: the lazy user would load it again.
            loaded = cached_async_user(request)
            if loaded is None:
                return user_pk(user)  # loads it
        # Loaded (the view's `request.user` usually did it): read it without the lazy object,
        # whose every attribute costs a proxy lookup.
        return user_pk(loaded)
    return user_pk(user)


async def _adefault_user_id(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and is_empty(loaded_object(user)):
        # Not evaluated yet: Django's async way, no thread hop when the user is cached.
        auser = getattr(request, "auser", None)
        if auser is not None:
            return user_pk(await auser())
        return await sync_to_async(user_pk)(user)
    return user_pk(user)  # set by DRF, or already loaded: no I/O


class _Resolvers(NamedTuple):
    """Which of a settings object's resolvers are `async def`: decided once, not per request."""

    settings: PayiSettings
    user_id: bool
    account_name: bool
    context: bool


_resolvers: _Resolvers | None = None


def _resolvers_of(settings: PayiSettings) -> _Resolvers:
    global _resolvers
    found = _resolvers
    if found is None or found.settings is not settings:
        found = _resolvers = _Resolvers(
            settings,
            *(
                fn is not None and iscoroutinefunction(fn)
                for fn in (settings.USER_ID, settings.ACCOUNT_NAME, settings.CONTEXT)
            ),
        )
    return found


class _DjangoRunner(Runner):
    """Django's way to run a resolver: never on an event loop's thread (no SynchronousOnlyOperation),
    a sync one through `sync_to_async` from async code, an `async def` one from sync code on the
    request's own loop if it can (`home`), else through `async_to_sync`."""

    def __init__(self, home: Home | None = None) -> None:
        self.home = home

    def sync(self, resolver: Callable[[], T]) -> T:
        return off_the_loop(resolver)

    async def from_async(self, resolver: Callable[[], T]) -> T:
        return await sync_to_async(resolver)()

    def await_from_sync(self, deferred: Deferred, resolver: Callable[[], Awaitable[T]]) -> T:
        if self.home is not None:
            try:
                return resolve_at_home(self.home, deferred.aget)  # type: ignore[no-any-return]
            except NotAtHome:
                pass
        return off_the_loop(lambda: _run_async(resolver))


_AWAY_FROM_HOME: Final = _DjangoRunner()


def _deferred(
    name: str,
    resolver: Callable[..., Any] | None,
    is_async: bool,
    request: HttpRequest,
    runner: _DjangoRunner,
) -> Deferred:
    if resolver is None:  # the default USER_ID
        return Deferred(
            lambda: off_the_loop(lambda: _default_user_id(request)),
            aresolve=lambda: _adefault_user_id(request),
            name=name,
        )
    return resolver_deferred(
        functools.partial(resolver, request), name=name, runner=runner, is_async=is_async
    )


def _frame(
    request: HttpRequest, settings: PayiSettings, extra: dict[str, Any], home: Home | None = None
) -> Frame:
    is_async = _resolvers_of(settings)
    runner = _AWAY_FROM_HOME if home is None else _DjangoRunner(home)
    args: dict[str, Any] = {
        "user_id": _deferred("PAYI['USER_ID']", settings.USER_ID, is_async.user_id, request, runner)
    }
    if settings.ACCOUNT_NAME is not None:
        args["account_name"] = _deferred(
            "PAYI['ACCOUNT_NAME']", settings.ACCOUNT_NAME, is_async.account_name, request, runner
        )
    args.update(extra)  # CONTEXT's explicit user_id/account_name win over the resolvers
    return scope_frame(args, where=_CONTEXT)


def request_frame(request: HttpRequest, settings: PayiSettings) -> Frame:
    """The request's frame, from the sync path (WSGI, or a sync middleware chain under ASGI)."""
    extra: dict[str, Any] = {}
    context = settings.CONTEXT
    if context is not None:
        try:
            is_async = _resolvers_of(settings).context
            value = _run_async(context, request) if is_async else context(request)
            extra = context_fields(_CONTEXT, value)
        except Exception:
            context_failed(_CONTEXT)
    return _frame(request, settings, extra)


async def arequest_frame(request: HttpRequest, settings: PayiSettings) -> Frame:
    """The request's frame, on the event loop. A sync CONTEXT runs in place: it should be cheap, no I/O."""
    extra: dict[str, Any] = {}
    context = settings.CONTEXT
    if context is not None:
        try:
            value = context(request)
            if _resolvers_of(settings).context:
                value = await value
            extra = context_fields(_CONTEXT, value)
        except Exception:
            context_failed(_CONTEXT)
    return _frame(request, settings, extra, home_here() if _has_async_resolver(settings) else None)


def _has_async_resolver(settings: PayiSettings) -> bool:
    is_async = _resolvers_of(settings)
    return is_async.user_id or is_async.account_name
