"""Header values as they can travel: accepted by every HTTP client and gateway on the way, and short.

h11 (the HTTP/1.1 of httpx and httpx2) refuses a value that starts or ends with a space or tab,
or holds NUL, CR, LF or whitespace other than spaces and tabs; httpx and httpx2 refuse non-ASCII
text. A refused value fails the call itself (or an ingest report). So a value
travels as is only when it is printable ASCII and neither starts nor ends with a space (`plain`);
any other is percent-encoded as UTF-8, `%` included, so that `urllib.parse.unquote` gives it back.
Control characters and DEL are encoded although h11 lets most through: proxies behind may not.

Gateways refuse large headers (431), often at 8 KB for all of a request's headers together, so
what payi-web sends is cut to `MAX_VALUE` per header and `MAX_TOTAL` for all of a call's.
"""

from __future__ import annotations

import json
import sys
from base64 import b64encode
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any, Final, TypeAlias

from .log import warn_once

__all__ = [
    "MARKER",
    "MAX_TOTAL",
    "MAX_VALUE",
    "TRUNCATED_KEY",
    "Source",
    "compact_json",
    "header_safe",
    "level",
    "plain",
    "props_value",
]

MAX_VALUE: Final = 4096  # bytes of one xProxy-* header value
MAX_TOTAL: Final = 6144  # bytes of all xProxy-* values of one call (the API key aside): 2 KB of 8 left
MARKER: Final = "...[truncated]"  # ends a cut text value
TRUNCATED_KEY: Final = "payi_web.truncated"  # in cut properties: how many were left out

# What a header's value is made from: its text, or a property header's dict.
Source: TypeAlias = str | Mapping[str, Any]


# Compact, ASCII-only JSON of a property dict, as Pay-i's SDK sends it.
compact_json: Final[Callable[[Mapping[str, Any]], str]] = json.JSONEncoder(separators=(",", ":")).encode
_json_str: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
_NO_LIMIT: Final = sys.maxsize


def plain(value: str) -> bool:
    """Whether `value` travels as it is (see the module docstring)."""
    return value.isascii() and value.isprintable() and value[:1] != " " and value[-1:] != " "


def _escaped(char: str) -> str:
    if char.isascii() and char.isprintable() and char != "%":
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def _cut(pieces: Sequence[str], room: int) -> str:
    """The most whole pieces (characters as sent), from the start, that fit in `room`."""
    return "".join(pieces[: bisect_right(list(accumulate(map(len, pieces))), room)])


def _warn_cut(header: str) -> None:
    warn_once(
        f"header-cut:{header}",
        "payi_web: %s is too long to be sent whole (at most %d bytes for one xProxy-* header, %d "
        "for all of a call's); it is sent cut, the call's record keeps it whole. This is logged "
        "once per header.",
        header,
        MAX_VALUE,
        MAX_TOTAL,
    )


def header_safe(value: str, header: str, limit: int = MAX_VALUE) -> str:
    """`value` as it can travel, in at most `limit` bytes: as is when it is `plain`, else
    percent-encoded (UTF-8) wherever it must be: `José` -> `Jos%C3%A9`, `"alice "` -> `alice%20`,
    `"50% "` -> `50%25%20`. A longer one is cut, at a character, and ends with `MARKER`.
    Encoding and cutting are each logged once per header, at WARNING, never with the value.
    """
    if plain(value):
        if len(value) <= limit:
            return value
        pieces: Sequence[str] = value[:limit]
    else:
        warn_once(
            f"header-unsafe:{header}",
            "payi_web: %s has characters that cannot travel in an HTTP header as they are; sent "
            "percent-encoded (UTF-8). This is logged once per header.",
            header,
        )
        whole = len(value) <= limit  # a character is 1 to 12 bytes once encoded: none past `limit` fit
        pieces = [_escaped(char) for char in value[:limit]]
        if value[0] == " ":
            pieces[0] = "%20"
        if whole:
            if value[-1] == " ":
                pieces[-1] = "%20"
            encoded = "".join(pieces)
            if len(encoded) <= limit:
                return encoded
    _warn_cut(header)
    return _cut(pieces, limit - len(MARKER)) + MARKER


def props_value(source: Source, proxy: bool, header: str, limit: int = MAX_VALUE) -> str:
    """A property header's value in at most `limit` bytes: compact JSON of `source` (a dict, or the
    JSON a caller gave), base64-encoded in proxy mode. When it is longer, the properties that fit
    are kept, in order (the first one that does not fit cut to the room left, if it is a str)
    and `TRUNCATED_KEY` says how many were left out; a caller's text that is no JSON object is
    cut as text."""
    text = source if isinstance(source, str) else compact_json(source)
    value = b64encode(text.encode()).decode() if proxy else header_safe(text, header, _NO_LIMIT)
    if len(value) <= limit:
        return value
    _warn_cut(header)
    room = limit // 4 * 3 if proxy else limit  # base64 sends 3 bytes as 4 characters
    data = _json_object(text) if isinstance(source, str) else source
    if data is not None:
        text = _fewer(data, room)  # ASCII JSON, plain: as it is in either mode
    elif not proxy:
        return header_safe(text, header, limit)
    else:
        text = text.encode()[: room - len(MARKER)].decode("utf-8", "ignore") + MARKER
    return b64encode(text.encode()).decode() if proxy else text


def _json_object(text: str) -> Mapping[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON; nested deeper than the parser goes
        return None
    return data if isinstance(data, dict) else None


def _fewer(data: Mapping[str, Any], room: int) -> str:
    """The compact JSON, in at most `room` characters, of the properties of `data` that fit."""
    # Room is kept for the marker's entry with the most digits it can have, and its braces.
    left = room - len(compact_json({TRUNCATED_KEY: str(len(data))}))
    entries: list[str] = []
    for key, value in data.items():
        entry = compact_json({key: value})[1:-1]
        if len(entry) + 1 <= left:  # with its comma
            entries.append(entry)
            left -= len(entry) + 1
            continue
        if isinstance(value, str):
            room_for_value = left - 1 - len(compact_json({key: ""})) + 2 - len(MARKER)
            if room_for_value > 0:
                widths = [len(_json_str(char)) - 2 for char in value[:room_for_value]]
                kept = value[: bisect_right(list(accumulate(widths)), room_for_value)]
                entries.append(compact_json({key: kept + MARKER})[1:-1])
        break
    entries.append(compact_json({TRUNCATED_KEY: str(len(data) - len(entries))})[1:-1])
    return "{" + ",".join(entries) + "}"


def level(sizes: Sequence[int], total: int) -> int:
    """The largest cap such that `sizes`, each cut to it, add up to at most `total`: the longest
    values are cut first, all to the same length, and short ones (ids, names) never."""
    remaining = total
    ordered = sorted(sizes)
    for index, size in enumerate(ordered):
        share = remaining // (len(ordered) - index)
        if size > share:
            return share
        remaining -= size
    return max(ordered, default=total)
