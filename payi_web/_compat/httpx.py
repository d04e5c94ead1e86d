"""The private parts of httpx and httpx2 (one is a fork of the other: the same names) payi-web uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import MissingPrivate

__all__ = ["SEND_SINGLE_REQUEST", "send_single_request"]

# Where a client puts each request on the wire: the first one, every redirect it follows and
# every request of an auth flow. The public `send()` sees only the first, so the rule "Pay-i's
# headers go only to Pay-i-bound hosts" is held here for the others.
SEND_SINGLE_REQUEST = "_send_single_request"


def send_single_request(client_class: type) -> Callable[..., Any]:
    """`client_class._send_single_request(self, request)`, or `MissingPrivate`."""
    method: Callable[..., Any] | None = getattr(client_class, SEND_SINGLE_REQUEST, None)
    if method is None or not callable(method):
        raise MissingPrivate(
            f"{client_class.__module__}.{client_class.__qualname__} has no {SEND_SINGLE_REQUEST}(): "
            "payi-web cannot keep its headers off redirects with this release"
        )
    return method
