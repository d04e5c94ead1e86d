"""`instrument()`: attach the tracking context to real OpenAI, Anthropic, httpx and httpx2 calls.

The hook sits at the HTTP layer, in `Client.send` / `AsyncClient.send` of httpx and httpx2,
so every endpoint, streaming or not, sync or async, is covered without a list of wrapped SDK
methods: openai 1.x/2.x use httpx, openai >= 3 and anthropic >= 2 use httpx2. Neither library
is imported here: each is adopted when the process imports it, before or after `instrument()`.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ._after_import import after_import
from ._call import Call, begin, guard_redirect
from ._compat import MissingPrivate
from ._compat.httpx import SEND_SINGLE_REQUEST, send_single_request
from ._log import warn_once
from .context import current_frame

__all__ = ["instrument", "uninstrument"]

C = TypeVar("C")


@dataclass(frozen=True)
class _Library:
    module: Any
    sync_send: Callable[..., Any]
    async_send: Callable[..., Any]
    sync_stream: type
    async_stream: type
    # None: a release without it (logged), where redirects cannot be guarded.
    sync_single: Callable[..., Any] | None
    async_single: Callable[..., Any] | None


def _single_sender(client_class: type) -> Callable[..., Any] | None:
    try:
        return send_single_request(client_class)
    except MissingPrivate as missing:  # never fails the app's `import httpx`
        warn_once(f"missing:{client_class.__module__}", "payi_web: %s", missing)
        return None


def _library(module: Any) -> _Library:
    return _Library(
        module,
        module.Client.send,
        module.AsyncClient.send,
        _sync_stream_class(module.SyncByteStream),
        _async_stream_class(module.AsyncByteStream),
        _single_sender(module.Client),
        _single_sender(module.AsyncClient),
    )


@dataclass(frozen=True)
class _Wrappers:
    """What `instrument()` puts in place of a library's methods (a client's, or the classes')."""

    sync_send: Callable[..., Any]
    async_send: Callable[..., Any]
    sync_single: Callable[..., Any] | None
    async_single: Callable[..., Any] | None


class _Observing:
    """What both observed bodies share: the call they complete, even if dropped unclosed."""

    def __init__(self, inner: Any, call: Call) -> None:
        self._inner = inner
        self._call = call
        weakref.finalize(self, call.finish)

    def _ended_by(self, exc: BaseException) -> None:
        # A consumer that stopped early (GeneratorExit) did not make the call fail.
        self._call.finish(error=not isinstance(exc, GeneratorExit))


def _sync_stream_class(base: type) -> type:
    class ObservedStream(_Observing, base):  # type: ignore[misc]
        """The response body, observed as it passes to the caller."""

        def __iter__(self) -> Iterator[bytes]:
            call = self._call
            try:
                for chunk in self._inner:
                    out = call.feed(chunk)
                    if out:
                        yield out
            except BaseException as exc:
                self._ended_by(exc)
                raise
            tail = call.end_of_body()
            if tail:
                yield tail

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._call.finish()

    return ObservedStream


def _async_stream_class(base: type) -> type:
    class ObservedAsyncStream(_Observing, base):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            call = self._call
            try:
                async for chunk in self._inner:
                    out = call.feed(chunk)
                    if out:
                        yield out
            except BaseException as exc:
                self._ended_by(exc)
                raise
            tail = call.end_of_body()
            if tail:
                yield tail

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._call.finish()

    return ObservedAsyncStream


def _untracked(request: Any) -> tuple[Any, None]:
    warn_once(
        "begin", "payi_web: could not attach tracking to a request; it is sent untracked", exc_info=True
    )
    return request, None


def _observe(lib: _Library, response: Any, call: Call, stream_class: type) -> None:
    try:
        if call.on_response(response):
            response.stream = stream_class(response.stream, call)
    except Exception:
        warn_once("on-response", "payi_web: could not observe a response", exc_info=True)
        call.finish()


def _sync_wrapper(lib: _Library) -> Callable[..., Any]:
    original = lib.sync_send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        try:
            request, call = begin(request, kwargs.get("stream", False))
        except Exception:
            request, call = _untracked(request)
        if call is None:
            return original(self, request, **kwargs)
        try:
            response = original(self, request, **kwargs)
        except BaseException:
            call.finish(error=True)
            raise
        _observe(lib, response, call, lib.sync_stream)
        return response

    send.__payi_web__ = True  # type: ignore[attr-defined]
    return send


def _async_wrapper(lib: _Library) -> Callable[..., Any]:
    original = lib.async_send

    async def send(self: Any, request: Any, **kwargs: Any) -> Any:
        frame = current_frame()
        try:
            if frame.has_unresolved():  # the request's first call: no coroutine for the others
                await frame.aresolve()  # deferred user/account, resolved the event loop's way
        except Exception:
            warn_once("aresolve", "payi_web: could not resolve the request's context", exc_info=True)
        try:
            request, call = begin(request, kwargs.get("stream", False), frame)
        except Exception:
            request, call = _untracked(request)
        if call is None:
            return await original(self, request, **kwargs)
        try:
            response = await original(self, request, **kwargs)
        except BaseException:
            call.finish(error=True)
            raise
        _observe(lib, response, call, lib.async_stream)
        return response

    send.__payi_web__ = True  # type: ignore[attr-defined]
    return send


def _guard_failed() -> None:
    warn_once("redirect-guard", "payi_web: could not check a redirected request's headers", exc_info=True)


def _single_wrappers(lib: _Library) -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """`_send_single_request` wrappers: every request a client puts on the wire, redirects too,
    carries Pay-i's headers only to a Pay-i-bound host."""
    sync_single, async_single = lib.sync_single, lib.async_single
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


def _wrappers(lib: _Library) -> _Wrappers:
    return _Wrappers(_sync_wrapper(lib), _async_wrapper(lib), *_single_wrappers(lib))


# httpx and httpx2 as the process imports them (`_adopt`), with their wrapped methods by id.
_LIBRARIES: list[_Library] = []
_WRAPPERS: dict[int, _Wrappers] = {}
# Whether `instrument()` (with no client) is in force: a library imported later is patched then.
_global = False


def _adopt(module: Any) -> None:
    if any(lib.module is module for lib in _LIBRARIES):
        return
    lib = _library(module)
    _WRAPPERS[id(lib)] = _wrappers(lib)
    _LIBRARIES.append(lib)
    if _global:
        _patch(lib)


def _patch(lib: _Library) -> None:
    wrappers = _WRAPPERS[id(lib)]
    lib.module.Client.send = wrappers.sync_send
    lib.module.AsyncClient.send = wrappers.async_send
    _set_single(lib.module.Client, wrappers.sync_single)
    _set_single(lib.module.AsyncClient, wrappers.async_single)


def _unpatch(lib: _Library) -> None:
    lib.module.Client.send = lib.sync_send
    lib.module.AsyncClient.send = lib.async_send
    _set_single(lib.module.Client, lib.sync_single)
    _set_single(lib.module.AsyncClient, lib.async_single)


def _set_single(target: Any, method: Callable[..., Any] | None) -> None:
    if method is not None:
        setattr(target, SEND_SINGLE_REQUEST, method)


for _name in ("httpx", "httpx2"):
    after_import(_name, _adopt)


def _http_client_of(client: Any) -> tuple[Any, Callable[..., Any], Callable[..., Any] | None] | None:
    """The httpx/httpx2 client inside `client` (itself, or an SDK client's `_client`) and its
    `send` and `_send_single_request` wrappers."""
    for candidate in (client, getattr(client, "_client", None)):
        for lib in _LIBRARIES:
            wrappers = _WRAPPERS[id(lib)]
            if isinstance(candidate, lib.module.Client):
                return candidate, wrappers.sync_send, wrappers.sync_single
            if isinstance(candidate, lib.module.AsyncClient):
                return candidate, wrappers.async_send, wrappers.async_single
    return None


def instrument(client: C | None = None) -> C | None:
    """Instrument every httpx/httpx2-based client in the process, or only `client`.

    With no argument, patches `send` of httpx's and httpx2's `Client` and `AsyncClient`, which
    covers `openai.OpenAI`, `AsyncOpenAI`, `AzureOpenAI`, `anthropic.Anthropic`,
    `AsyncAnthropic` and plain clients, including ones created before this call; calling it
    again is harmless. With a client, instruments that client alone and returns it. Either way,
    each request the client then sends after the first (a redirect it follows) keeps Pay-i's
    headers and key only if it is bound for Pay-i too.

    """
    global _global
    if client is None:
        _global = True
        for lib in _LIBRARIES:
            _patch(lib)
        return None
    found = _http_client_of(client)
    if found is None:
        raise TypeError(
            f"instrument(): {type(client).__name__} is neither an httpx/httpx2 client "
            "nor an SDK client built on one"
        )
    http_client, send, send_single = found
    # Instance attributes: this client alone, whatever the global state.
    http_client.send = types.MethodType(send, http_client)
    if send_single is not None:
        _set_single(http_client, types.MethodType(send_single, http_client))
    return client


def uninstrument(client: Any = None) -> None:
    """Undo `instrument()`: globally, or for one client."""
    global _global
    if client is None:
        _global = False
        for lib in _LIBRARIES:
            _unpatch(lib)
        return
    found = _http_client_of(client)
    if found is not None:
        for name in ("send", SEND_SINGLE_REQUEST):
            vars(found[0]).pop(name, None)


def is_instrumented(client: Any = None) -> bool:
    if client is None:
        if not _LIBRARIES:  # neither is imported yet: each will be patched on import
            return _global
        return any(getattr(lib.module.Client.send, "__payi_web__", False) for lib in _LIBRARIES)
    found = _http_client_of(client)
    return found is not None and getattr(found[0].send, "__payi_web__", False)
