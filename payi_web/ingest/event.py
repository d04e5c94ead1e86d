"""One call record -> one Pay-i ingest event: the JSON body and the `xProxy-*` headers of its POST.

The wire format is that of Pay-i's `POST /api/v1/ingest` (as its SDK sends it):

- headers: the attribution, as the same `xProxy-*` headers the core emits for a call made
  without the proxy (`record.headers`, where the caller's explicit headers already won): limit
  ids, use case name/id/version/step, user id, account name, resource scope and
  `xProxy-Logging-Disable`. The API key is added by the sender, never stored here.
- body: `category`, `resource`, `units`, `end_to_end_latency_ms`, `time_to_first_token_ms`
  (streams), `http_status_code`, `provider_uri`, `event_timestamp`, `provider_response_id`,
  `properties` and `use_case_properties`. A price-as category/resource replaces `category` /
  `resource`, as Pay-i's SDK does in ingest mode. Fields that are unknown are left out.

Unknown usage (a stream abandoned early, a failed call, a response without `usage`) is sent
as `"units": {}`: the call is reported with its attribution, status and latency, and no
invented token counts. An unknown model is `system.unknown_model` and a missing response id
`payi_<uuid4>`, both as Pay-i's SDK sends them; the id is drawn once per record, so a retried
event is byte-for-byte the same.

No prompt or response text is ever part of an event: a call record holds none.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from ..core.field_table import FIELDS, Ingest
from ..core.log import warn_once
from ..core.records import CallRecord, Units

__all__ = ["INGEST_HEADERS", "IngestEvent", "build_event", "wanted"]

UNKNOWN_MODEL: Final = "system.unknown_model"


def _headers_of(ingest: Ingest) -> tuple[tuple[str, str, str], ...]:
    """(header, its lower-cased name, body key) of the fields an ingest event reports `ingest`-wise."""
    return tuple(
        (spec.header, spec.header.lower(), spec.body_key or "")
        for spec in FIELDS
        if spec.ingest is ingest and spec.header is not None
    )


# The context headers of an ingest POST, in Pay-i's spelling and the field table's order.
INGEST_HEADERS: Final = tuple(header for header, _, _ in _headers_of(Ingest.HEADER))
_INGEST_HEADERS_LOWER: Final = tuple((low, header) for header, low, _ in _headers_of(Ingest.HEADER))
# The headers whose value replaces a body entry (price-as), and those sent as body properties.
_REPLACING: Final = _headers_of(Ingest.BODY_REPLACES)
_PROPERTIES: Final = _headers_of(Ingest.BODY_PROPERTIES)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class IngestEvent:
    body: bytes  # JSON, UTF-8
    headers: Mapping[str, str]  # the xProxy-* context headers, without the API key

    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


def wanted(record: CallRecord) -> bool:
    """Whether a record is ingested: not when the call went through the Pay-i proxy (it already
    knows it) nor when its context asked for the proxy."""
    return not record.proxied and record.context.proxy is not True


def build_event(record: CallRecord) -> IngestEvent:
    given = {name.lower(): value for name, value in record.headers.items()}
    headers = {name: given[low] for low, name in _INGEST_HEADERS_LOWER if given.get(low)}
    body: dict[str, Any] = {
        "category": record.category,
        "resource": record.resource or UNKNOWN_MODEL,
        "units": units_json(record.units),
        "end_to_end_latency_ms": max(0, round(record.latency_ms)),
    }
    for _, low, key in _REPLACING:  # a price-as category or resource
        value = given.get(low)
        if value:
            body[key] = value
    if record.time_to_first_token_ms is not None:
        body["time_to_first_token_ms"] = max(0, round(record.time_to_first_token_ms))
    if record.status is not None:
        body["http_status_code"] = record.status
    body["provider_uri"] = record.url
    body["event_timestamp"] = iso_utc(record.timestamp)
    body["provider_response_id"] = record.response_id or f"payi_{uuid.uuid4()}"
    for header, low, key in _PROPERTIES:
        properties = _properties(given.get(low), header)
        if properties:
            body[key] = properties
    return IngestEvent(_encode(body).encode(), headers)


def units_json(units: Mapping[str, Units]) -> dict[str, dict[str, int]]:
    """`{"text": {"input": N, "output": M}, ...}`; an unknown side is left out, unknown usage is {}."""
    out: dict[str, dict[str, int]] = {}
    for kind, unit in units.items():
        pairs = (("input", unit.input), ("output", unit.output))
        sides = {side: value for side, value in pairs if value is not None}
        if sides:
            out[kind] = sides
    return out


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC (a naive datetime is taken as UTC), as Pay-i's SDK sends it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _properties(text: str | None, header: str) -> dict[str, str | None] | None:
    """A property header's JSON object, values as strings (null kept: "no value")."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # a caller's own header: not JSON, or nested too deep to parse
        data = None
    if not isinstance(data, dict):
        warn_once(
            f"ingest-properties:{header}",
            "payi_web: %s is not a JSON object; it is left out of the ingest event",
            header,
        )
        return None
    return {
        str(key): value if value is None or isinstance(value, str) else _compact(value)
        for key, value in data.items()
    }


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
