"""The private parts of Django that payi-web's Django layer reads, each behind a named function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils.functional import SimpleLazyObject, empty

from . import MissingPrivate

__all__ = ["add_closer", "cached_async_user", "loaded_object", "move_last_closer_first", "streaming_body"]

# Set by Django's AuthenticationMiddleware on a request whose async view ran `await request.auser()`.
_ACACHED_USER = "_acached_user"


def _closers(response: StreamingHttpResponse) -> list[Callable[[], Any]]:
    closers = getattr(response, "_resource_closers", None)
    if not isinstance(closers, list):
        raise MissingPrivate(
            "django.http.HttpResponseBase has no _resource_closers list: payi-web cannot close a "
            "streamed body in its scope with this release"
        )
    return closers


def streaming_body(response: StreamingHttpResponse) -> object:
    """The iterator a `StreamingHttpResponse` was given (Django keeps it as `_iterator`)."""
    try:
        return response._iterator  # type: ignore[attr-defined]
    except AttributeError:
        raise MissingPrivate("django.http.StreamingHttpResponse has no _iterator") from None


def add_closer(response: StreamingHttpResponse, close: Callable[[], Any]) -> None:
    """Have Django call `close()` when it closes the response (after the ones it holds)."""
    _closers(response).append(close)


def move_last_closer_first(response: StreamingHttpResponse) -> None:
    """Django closes a response's iterators in the order they were set: make the last one first."""
    closers = _closers(response)
    if len(closers) > 1:
        closers.insert(0, closers.pop())


def loaded_object(lazy: SimpleLazyObject[Any]) -> Any:
    """What a `SimpleLazyObject` holds, or `empty` (read past its attribute proxying)."""
    try:
        return object.__getattribute__(lazy, "_wrapped")
    except AttributeError:
        raise MissingPrivate("django.utils.functional.SimpleLazyObject has no _wrapped") from None


def is_empty(value: object) -> bool:
    """Whether `value` is the marker of a lazy object not evaluated yet."""
    return value is empty


def cached_async_user(request: HttpRequest) -> Any:
    """The user an async view's `await request.auser()` loaded, or None (not loaded that way)."""
    return getattr(request, _ACACHED_USER, None)
