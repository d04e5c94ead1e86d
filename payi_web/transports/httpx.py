"""The httpx and httpx2 transport: `send` of their `Client` and `AsyncClient` wrapped, so every
endpoint, streaming or not, sync or async, is covered without a list of wrapped SDK methods
(openai 1.x/2.x use httpx, openai >= 3 and anthropic >= 1 use httpx2).

Neither library is imported here: each is adopted when the process imports it, before or after
`instrument()`, so an app on httpx2 never loads legacy httpx (~140 ms of start-up).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .._compat import MissingPrivate
from .._compat.httpx import SEND_SINGLE_REQUEST, send_single_request
from ..core.after_import import after_import
from ..core.context import Frame, current_frame
from ..core.log import warn_once
from .call import Call
from .httpx_call import async_stream_class, begin, guard_redirect, observe, sync_stream_class

__all__ = ["instrument", "instrument_client", "is_instrumented", "uninstrument", "uninstrument_client"]

_Method = Callable[..., Any]


@dataclass(frozen=True)
class _Library:
    """One of httpx and httpx2, with its own methods (to restore) and payi-web's in their place."""

    module: Any
    sync_send: _Method
    async_send: _Method
    # None: a release without it (logged), where redirects cannot be guarded.
    sync_single: _Method | None
    async_single: _Method | None
    wrapped_sync_send: _Method
    wrapped_async_send: _Method
    wrapped_sync_single: _Method | None
    wrapped_async_single: _Method | None


def _single_sender(client_class: type) -> _Method | None:
    try:
        return send_single_request(client_class)
    except MissingPrivate as missing:  # never fails the app's `import httpx`
        warn_once(f"missing:{client_class.__module__}", "payi_web: %s", missing)
        return None


def _begin(request: Any, kwargs: dict[str, Any], frame: Frame | None = None) -> tuple[Any, Call | None]:
    try:
        return begin(request, kwargs.get("stream", False), frame)
    except Exception:
        warn_once(
            "begin", "payi_web: could not attach tracking to a request; it is sent untracked", exc_info=True
        )
        return request, None


@contextmanager
def _failing(call: Call) -> Iterator[None]:
    """A send that raised (a connection error, a timeout, a cancelled task) is a failed call."""
    try:
        yield
    except BaseException:
        call.finish(error=True)
        raise


def _sync_send(original: _Method, stream_class: type) -> _Method:
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        request, call = _begin(request, kwargs)
        if call is None:
            return original(self, request, **kwargs)
        with _failing(call):
            response = original(self, request, **kwargs)
        observe(response, call, stream_class)
        return response

    send.__payi_web__ = True  # type: ignore[attr-defined]
    return send


def _async_send(original: _Method, stream_class: type) -> _Method:
    async def send(self: Any, request: Any, **kwargs: Any) -> Any:
        frame = current_frame()
        try:
            if frame.has_unresolved():  # the request's first call: no coroutine for the others
                await frame.aresolve()  # deferred user/account, resolved the event loop's way
        except Exception:
            warn_once("aresolve", "payi_web: could not resolve the request's context", exc_info=True)
        request, call = _begin(request, kwargs, frame)
        if call is None:
            return await original(self, request, **kwargs)
        with _failing(call):
            response = await original(self, request, **kwargs)
        observe(response, call, stream_class)
        return response

    send.__payi_web__ = True  # type: ignore[attr-defined]
    return send


def _guard_failed() -> None:
    warn_once("redirect-guard", "payi_web: could not check a redirected request's headers", exc_info=True)


def _single_senders(sync_single: _Method | None, async_single: _Method | None) -> tuple[_Method | None, ...]:
    """`_send_single_request` wrappers: every request a client puts on the wire, redirects too,
    carries Pay-i's headers only to a Pay-i-bound host."""
    if sync_single is None or async_single is None:
        return None, None

    def send_single(self: Any, request: Any) -> Any:
        try:
            guard_redirect(request)
        except Exception:
            _guard_failed()
        return sync_single(self, request)

    async def asend_single(self: Any, request: Any) -> Any:
        try:
            guard_redirect(request)
        except Exception:
            _guard_failed()
        return await async_single(self, request)

    return send_single, asend_single


def _library(module: Any) -> _Library:
    sync_single, async_single = _single_sender(module.Client), _single_sender(module.AsyncClient)
    return _Library(
        module,
        module.Client.send,
        module.AsyncClient.send,
        sync_single,
        async_single,
        _sync_send(module.Client.send, sync_stream_class(module.SyncByteStream)),
        _async_send(module.AsyncClient.send, async_stream_class(module.AsyncByteStream)),
        *_single_senders(sync_single, async_single),
    )


# httpx and httpx2 as the process imports them; whether `instrument()` (with no client) is in
# force, so that a library imported later is patched as it is imported.
_libraries: list[_Library] = []
_global = False


def _adopt(module: Any) -> None:
    if any(lib.module is module for lib in _libraries):
        return
    lib = _library(module)
    _libraries.append(lib)
    if _global:
        _patch(lib)


def _set(target: Any, name: str, method: _Method | None) -> None:
    if method is not None:
        setattr(target, name, method)


def _patch(lib: _Library) -> None:
    _set(lib.module.Client, "send", lib.wrapped_sync_send)
    _set(lib.module.AsyncClient, "send", lib.wrapped_async_send)
    _set(lib.module.Client, SEND_SINGLE_REQUEST, lib.wrapped_sync_single)
    _set(lib.module.AsyncClient, SEND_SINGLE_REQUEST, lib.wrapped_async_single)


def _unpatch(lib: _Library) -> None:
    _set(lib.module.Client, "send", lib.sync_send)
    _set(lib.module.AsyncClient, "send", lib.async_send)
    _set(lib.module.Client, SEND_SINGLE_REQUEST, lib.sync_single)
    _set(lib.module.AsyncClient, SEND_SINGLE_REQUEST, lib.async_single)


for _name in ("httpx", "httpx2"):
    after_import(_name, _adopt)


def instrument() -> None:
    global _global
    _global = True
    for lib in _libraries:
        _patch(lib)


def uninstrument() -> None:
    global _global
    _global = False
    for lib in _libraries:
        _unpatch(lib)


def _http_client_of(client: Any) -> tuple[Any, _Method, _Method | None] | None:
    """The httpx/httpx2 client inside `client` (itself, or an SDK client's `_client`) and its
    `send` and `_send_single_request` wrappers."""
    for candidate in (client, getattr(client, "_client", None)):
        for lib in _libraries:
            if isinstance(candidate, lib.module.Client):
                return candidate, lib.wrapped_sync_send, lib.wrapped_sync_single
            if isinstance(candidate, lib.module.AsyncClient):
                return candidate, lib.wrapped_async_send, lib.wrapped_async_single
    return None


def instrument_client(client: Any) -> bool:
    """Instrument this client alone (instance attributes); False if it is not one of ours."""
    found = _http_client_of(client)
    if found is None:
        return False
    http_client, send, send_single = found
    http_client.send = types.MethodType(send, http_client)
    if send_single is not None:
        setattr(http_client, SEND_SINGLE_REQUEST, types.MethodType(send_single, http_client))
    return True


def uninstrument_client(client: Any) -> bool:
    found = _http_client_of(client)
    if found is None:
        return False
    for name in ("send", SEND_SINGLE_REQUEST):
        vars(found[0]).pop(name, None)
    return True


def is_instrumented(client: Any = None) -> bool:
    if client is None:
        if not _libraries:  # neither is imported yet: each will be patched on import
            return _global
        return any(getattr(lib.module.Client.send, "__payi_web__", False) for lib in _libraries)
    found = _http_client_of(client)
    return found is not None and getattr(found[0].send, "__payi_web__", False)
