"""The private parts of httpx and httpx2 (one is a fork of the other: the same names) payi-web uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import MissingPrivate

__all__ = [
    "SEND_SINGLE_REQUEST",
    "add_headers",
    "has_payi_headers",
    "replace_body",
    "replace_content",
    "send_single_request",
]

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


def replace_content(response: Any, content: bytes) -> None:
    """Make `content` what a response already read in whole yields to its reader.

    A response read before payi-web sees it (a body given whole, a non-streaming send) serves
    `iter_bytes()` and `content` from `_content`; there is no public way to change it.
    """
    if not hasattr(response, "_content"):
        raise MissingPrivate(f"{type(response).__module__}.Response has no _content")
    response._content = content


def _entries(headers: Any) -> list[tuple[bytes, bytes, bytes]] | None:
    """A `Headers`' own list of (name, lower-case name, value), where it is usable as such."""
    entries = getattr(headers, "_list", None)
    if isinstance(entries, list) and getattr(headers, "_encoding", None) in (None, "ascii", "utf-8"):
        return entries
    return None


def has_payi_headers(headers: Any) -> bool:
    """Whether any header name starts with `xproxy-` (any case): one C-level search over the
    lower-case names, where the public `raw` would build a list and loop in Python (a few µs
    on every call, twice)."""
    entries = _entries(headers)
    if entries is None:
        return any(name[:7].lower() == b"xproxy-" for name, _ in headers.raw)
    return b"xproxy-" in b"\n".join([lower for _, lower, _ in entries])


def add_headers(headers: Any, added: Mapping[str, str]) -> None:
    """Add headers whose names `headers` does not hold yet. `Headers.update()` searches the list
    for each name and encodes it twice (~9 µs for Pay-i's headers, 1.5% of an in-process call)."""
    entries = _entries(headers)
    if entries is None:
        headers.update(added)
        return
    entries.extend([(k.encode(), k.lower().encode(), v.encode()) for k, v in added.items()])


def replace_body(request: Any, body: bytes) -> bool:
    """Give a request whose body was given whole a new one, in place; False where it cannot be
    (a streamed body). Rebuilding the request costs ~11 µs, 1% of an in-process streamed call."""
    stream = request.stream
    if not (hasattr(request, "_content") and type(stream).__name__ == "ByteStream"):
        return False
    request.stream = type(stream)(body)
    request._content = body
    request.headers["content-length"] = str(len(body))
    return True
