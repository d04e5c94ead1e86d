"""The `xProxy-*` headers that carry a tracking context to Pay-i, and the caller's precedence over them."""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from .context import Frame, LazyId, Props, current_frame
from .deferred import Deferred
from .field_table import FIELDS, Encoding, PayiHeaders
from .header_values import MAX_TOTAL, MAX_VALUE, Source, compact_json, header_safe, level, plain, props_value

__all__ = ["PayiHeaders", "payi_headers"]

H = PayiHeaders
# The fields sent as headers, in the field table's order: (field, header, encoding).
_SENT: Final = tuple(
    (spec.name, spec.header, spec.encoding) for spec in FIELDS if spec.header and spec.encoding
)
# Lower-cased name -> Pay-i's spelling, for every header Pay-i reads.
CANONICAL: Final = {name.lower(): name for name in (*(header for _, header, _ in _SENT), H.API_KEY)}
_CONTEXT_HEADERS: Final = frozenset(CANONICAL) - {H.API_KEY.lower()}
_UC_NAME: Final = H.USE_CASE_NAME.lower()
# What an explicit use case name replaces of the context's use case (its properties are kept).
_UC_DETAILS: Final = frozenset(n.lower() for n in (H.USE_CASE_ID, H.USE_CASE_VERSION, H.USE_CASE_STEP))
# The property headers: (field, header) for the fields sent as JSON.
_PROPERTY_FIELDS: Final = tuple(
    (name, header) for name, header, encoding in _SENT if encoding is Encoding.JSON
)
_PROPERTY_HEADERS: Final = frozenset(header.lower() for _, header in _PROPERTY_FIELDS)


def _text(value: Any, proxy: bool) -> str | None:
    return value.get() if isinstance(value, (LazyId, Deferred)) else value


def _number(value: int, proxy: bool) -> str:
    return str(value)


def _comma_list(value: tuple[str, ...], proxy: bool) -> str:
    return ",".join(value)


def _json(props: Props, proxy: bool) -> str:
    encoded = props.encoded.get(proxy)
    if encoded is None:
        encoded = compact_json(props.data)
        if proxy:
            encoded = b2a_base64(encoded.encode(), newline=False).decode()
        props.encoded[proxy] = encoded
    return encoded


def _disable_flag(value: bool, proxy: bool) -> str | None:
    return "True" if value is False else None


# How a frame's value (never None) becomes its header's text; None or "" sends no header.
_ENCODERS: Final[dict[Encoding, Callable[[Any, bool], str | None]]] = {
    Encoding.TEXT: _text,
    Encoding.NUMBER: _number,
    Encoding.COMMA_LIST: _comma_list,
    Encoding.JSON: _json,
    Encoding.DISABLE_FLAG: _disable_flag,
}


def _values(frame: Frame, proxy: bool) -> dict[str, str]:
    """The headers of `frame` as they are sent when every value is ordinary: raw text, and
    property headers encoded. (A frame holds no use case id, version, step or properties
    without a use case name: `context._fill_use_case`.)"""
    out: dict[str, str] = {}
    for name, header, encoding in _SENT:
        value = getattr(frame, name)
        if value is not None:
            text = _ENCODERS[encoding](value, proxy)
            if text:
                out[header] = text
    return out


def _build(frame: Frame, proxy: bool) -> dict[str, str]:
    out = _values(frame, proxy)
    # Every value checked at once (the usual case: short printable ASCII, no space at either end
    # of a value); only otherwise is each one looked at, and encoded or cut where it must be.
    every = "".join(out.values())
    if (
        len(every) > MAX_VALUE
        or not (every.isascii() and every.isprintable())
        or (" " in every and _space_at_an_end(out))
    ):
        sources = _sources(frame, out)
        for header, value in out.items():
            if len(value) > MAX_VALUE or not plain(value):
                out[header] = _fit(header, sources[header], proxy, MAX_VALUE)
        _within_total(out, list(out), sources.__getitem__, proxy)
    return out


def _space_at_an_end(values: Mapping[str, str]) -> bool:
    # Joined by "|": a space next to one (or at either end) may end a value. A "|" of a value's
    # own next to a space only sends it down the slow path, which decides value by value.
    joined = "|".join(values.values())
    return joined[:1] == " " or joined[-1:] == " " or " |" in joined or "| " in joined


def _sources(frame: Frame, values: Mapping[str, str]) -> dict[str, Source]:
    """What each of the frame's header `values` is made from: its text, or a property dict."""
    sources: dict[str, Source] = dict(values)
    for name, header in _PROPERTY_FIELDS:
        props: Props | None = getattr(frame, name)
        if props is not None and header in sources:
            sources[header] = props.data
    return sources


def _fit(header: str, source: Source, proxy: bool, limit: int) -> str:
    if header.lower() in _PROPERTY_HEADERS:
        return props_value(source, proxy, header, limit)
    assert isinstance(source, str)
    return header_safe(source, header, limit)


def _within_total(
    out: dict[str, str], names: list[str], source: Callable[[str], Source], proxy: bool
) -> None:
    """Cut the Pay-i headers `names` of `out` (each within `MAX_VALUE` already) to `MAX_TOTAL`
    together, each made anew from `source(name)`: the longest first, to a common length."""
    sizes = [len(out[name]) for name in names]
    if sum(sizes) <= MAX_TOTAL:
        return
    cap = level(sizes, MAX_TOTAL)
    for name in names:
        if len(out[name]) > cap:
            out[name] = _fit(name, source(name), proxy, cap)


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
    names: list[str] = []  # the Pay-i headers of `out`, and the length of their values
    size = 0
    for name, value in _cached(frame, proxy)[0].items():
        low = name.lower()
        if low in given or (explicit_name is not None and low in _UC_DETAILS):
            continue
        out[name] = value
        names.append(name)
        size += len(value)
    for low, (name, value) in given.items():
        if not value:
            continue
        if explicit_name is not None and not explicit_name[1] and low in _UC_DETAILS:
            continue
        value = out[name] = _fit(name, value, proxy, MAX_VALUE)
        names.append(name)
        size += len(value)
    if size > MAX_TOTAL:
        context: dict[str, Source] = {}

        def source(name: str) -> Source:
            low = name.lower()
            if low in given:
                return given[low][1]
            if not context:  # the context's values before encoding, made again: a rare case
                context.update(_sources(frame, _values(frame, proxy)))
            return context[name]

        _within_total(out, names, source, proxy)
    return out


def payi_headers(extra_headers: Mapping[str, str] | None = None, *, proxy: bool = True) -> dict[str, str]:
    """The Pay-i headers for the effective context, merged under the caller's explicit headers.

    Pass the result as OpenAI's `extra_headers=`. `proxy=True` (calls through the Pay-i proxy)
    base64-encodes the property headers; `proxy=False` sends them as compact JSON.
    """
    return merge_headers(current_frame(), extra_headers or {}, proxy)
