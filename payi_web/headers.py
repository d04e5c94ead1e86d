"""The `xProxy-*` headers that carry a tracking context to Pay-i, and the caller's precedence over them."""

from __future__ import annotations

import base64
import json
from binascii import b2a_base64
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from ._fields import Deferred
from ._log import warn_once
from .context import Frame, LazyId, Properties, Props, current_frame

__all__ = ["PayiHeaders", "payi_headers"]


class PayiHeaders:
    """The header names Pay-i reads (matched case-insensitively)."""

    USE_CASE_NAME: Final = "xProxy-UseCase-Name"
    USE_CASE_ID: Final = "xProxy-UseCase-ID"
    USE_CASE_VERSION: Final = "xProxy-UseCase-Version"
    USE_CASE_STEP: Final = "xProxy-UseCase-Step"
    USE_CASE_PROPERTIES: Final = "xProxy-UseCase-Properties"
    LIMIT_IDS: Final = "xProxy-Limit-IDs"
    USER_ID: Final = "xProxy-User-ID"
    ACCOUNT_NAME: Final = "xProxy-Account-Name"
    REQUEST_PROPERTIES: Final = "xProxy-Request-Properties"
    PRICE_AS_CATEGORY: Final = "xProxy-PriceAs-Category"
    PRICE_AS_RESOURCE: Final = "xProxy-PriceAs-Resource"
    RESOURCE_SCOPE: Final = "xProxy-Resource-Scope"
    LOGGING_DISABLE: Final = "xProxy-Logging-Disable"
    API_KEY: Final = "xProxy-api-key"


H = PayiHeaders
# Lower-cased name -> Pay-i's spelling, for every header Pay-i reads.
CANONICAL: Final = {
    name.lower(): name
    for name in (
        H.USE_CASE_NAME,
        H.USE_CASE_ID,
        H.USE_CASE_VERSION,
        H.USE_CASE_STEP,
        H.USE_CASE_PROPERTIES,
        H.LIMIT_IDS,
        H.USER_ID,
        H.ACCOUNT_NAME,
        H.REQUEST_PROPERTIES,
        H.PRICE_AS_CATEGORY,
        H.PRICE_AS_RESOURCE,
        H.RESOURCE_SCOPE,
        H.LOGGING_DISABLE,
        H.API_KEY,
    )
}
_CONTEXT_HEADERS: Final = frozenset(CANONICAL) - {H.API_KEY.lower()}
_UC_NAME: Final = H.USE_CASE_NAME.lower()
_UC_DETAILS: Final = frozenset(n.lower() for n in (H.USE_CASE_ID, H.USE_CASE_VERSION, H.USE_CASE_STEP))
_PROPERTY_HEADERS: Final = frozenset(n.lower() for n in (H.USE_CASE_PROPERTIES, H.REQUEST_PROPERTIES))


def header_safe(value: str, header: str) -> str:
    """`value` as a valid header value: every character outside printable ASCII percent-encoded.

    Non-ASCII text and control characters cannot travel in an HTTP header (httpx raises on the
    former, CR/LF would split the header), so they are sent as `%XX` of their UTF-8 bytes:
    `José` -> `Jos%C3%A9`, CR -> `%0D`. Logged once per header, at WARNING.
    """
    if value.isascii() and value.isprintable():
        return value
    warn_once(
        f"header-unsafe:{header}",
        "payi_web: %s has characters that cannot travel in an HTTP header; sent percent-encoded "
        "(UTF-8). This is logged once per header.",
        header,
    )
    return "".join(
        char
        if char.isascii() and char.isprintable()
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in value
    )


def _json_encoder() -> Callable[[Properties], str]:
    """Compact, ASCII-only JSON of a property dict (as Pay-i's SDK sends it), made once.

    `JSONEncoder.encode` builds a new C encoder on every call; properties (str keys, str or
    None values, never circular) go straight to one built here, when json has its C part.
    """
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    ascii_str = json.encoder.encode_basestring_ascii
    # (markers, default, str encoder, indent, key sep, item sep, sort_keys, skipkeys, allow_nan)
    chunks = make(None, encoder.default, ascii_str, None, ":", ",", False, False, True)
    return lambda data: "".join(chunks(data, 0))


_compact_json = _json_encoder()


def _encode_props(props: Props, proxy: bool) -> str:
    encoded = props.encoded.get(proxy)
    if encoded is None:
        encoded = _compact_json(props.data)
        if proxy:
            encoded = b2a_base64(encoded.encode(), newline=False).decode()
        props.encoded[proxy] = encoded
    return encoded


def _build(frame: Frame, proxy: bool) -> dict[str, str]:
    # Straight-line: this runs for every scope that makes a GenAI call.
    out: dict[str, str] = {}
    name = frame.use_case_name
    if name:
        out[H.USE_CASE_NAME] = name
        use_case_id = frame.use_case_id
        if use_case_id is not None:
            if isinstance(use_case_id, LazyId):
                use_case_id = use_case_id.get()
            out[H.USE_CASE_ID] = use_case_id
        if frame.use_case_version is not None:
            out[H.USE_CASE_VERSION] = str(frame.use_case_version)
        if frame.use_case_step is not None:
            out[H.USE_CASE_STEP] = frame.use_case_step
    if frame.use_case_properties is not None:
        out[H.USE_CASE_PROPERTIES] = _encode_props(frame.use_case_properties, proxy)
    if frame.limit_ids:
        out[H.LIMIT_IDS] = ",".join(frame.limit_ids)
    value = frame.user_id
    if isinstance(value, Deferred):
        value = value.get()
    if value:
        out[H.USER_ID] = value
    value = frame.account_name
    if isinstance(value, Deferred):
        value = value.get()
    if value:
        out[H.ACCOUNT_NAME] = value
    if frame.request_properties is not None:
        out[H.REQUEST_PROPERTIES] = _encode_props(frame.request_properties, proxy)
    if frame.price_as_category:
        out[H.PRICE_AS_CATEGORY] = frame.price_as_category
    if frame.price_as_resource:
        out[H.PRICE_AS_RESOURCE] = frame.price_as_resource
    if frame.resource_scope:
        out[H.RESOURCE_SCOPE] = frame.resource_scope
    if frame.log_prompt_and_response is False:
        out[H.LOGGING_DISABLE] = "True"
    # Every value checked at once (the usual case); only an unsafe one is looked for and encoded.
    every = "".join(out.values())
    if not (every.isascii() and every.isprintable()):
        for header, text in out.items():
            out[header] = header_safe(text, header)
    return out


def _cached(frame: Frame, proxy: bool) -> tuple[dict[str, str], Mapping[str, str]]:
    by_mode = frame.headers
    if by_mode is None:
        by_mode = frame.headers = {}
    cached = by_mode.get(proxy)
    if cached is None:
        headers = _build(frame, proxy)
        cached = by_mode[proxy] = (headers, MappingProxyType(headers))
    return cached


def fresh_headers(frame: Frame, proxy: bool) -> Mapping[str, str]:
    """The headers of `frame` alone, built anew (for a caller that keeps them): a read-only view."""
    return MappingProxyType(_build(frame, proxy))


def context_headers(frame: Frame, proxy: bool) -> Mapping[str, str]:
    """The headers of `frame` alone, computed once per frame and mode: a read-only view, shared."""
    return _cached(frame, proxy)[1]


def merge_headers(frame: Frame, explicit: Mapping[str, str], proxy: bool) -> dict[str, str]:
    """The caller's headers with the context's Pay-i headers added where the caller set none.

    Explicit wins whatever the spelling of its name; an explicit empty Pay-i header is removed;
    an explicit use case name (empty or not) suppresses the context's id, version and step, and
    an empty one removes all four use case headers; explicit properties replace the context's.
    """
    if not explicit:
        return _cached(frame, proxy)[0].copy()
    out: dict[str, str] = {}
    given: dict[str, tuple[str, str]] = {}
    for name, value in explicit.items():
        low = name.lower()
        if low in _CONTEXT_HEADERS:
            if not isinstance(value, str):
                raise TypeError(f"payi_headers: header {name!r} must be str, got {type(value).__name__}")
            given[low] = (name, value)
        else:
            out[name] = value
    explicit_name = given.get(_UC_NAME)
    for name, value in _cached(frame, proxy)[0].items():
        low = name.lower()
        if low in given or (explicit_name is not None and low in _UC_DETAILS):
            continue
        out[name] = value
    for low, (name, value) in given.items():
        if not value:
            continue
        if explicit_name is not None and not explicit_name[1] and low in _UC_DETAILS:
            continue
        if low in _PROPERTY_HEADERS and proxy:
            value = base64.b64encode(value.encode()).decode()
        out[name] = header_safe(value, name)
    return out


def payi_headers(extra_headers: Mapping[str, str] | None = None, *, proxy: bool = True) -> dict[str, str]:
    """The Pay-i headers for the effective context, merged under the caller's explicit headers.

    Pass the result as OpenAI's `extra_headers=`. `proxy=True` (calls through the Pay-i proxy)
    base64-encodes the property headers; `proxy=False` sends them as compact JSON.
    """
    return merge_headers(current_frame(), extra_headers or {}, proxy)
