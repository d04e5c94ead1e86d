"""Carry the effective context to work that runs elsewhere, and continue it there.

`inject(carrier)` writes the context into a string mapping (a task message's headers, a job's
metadata) as one JSON value; `continue_context(carrier)` is the scope that continues it, in
another process, thread or task: `with`, `async with`, or as a decorator. Every field travels,
the use case instance id included, so the work joins the publisher's use case instance; a
deferred user id or account name is resolved at `inject()` time, while the request it reads is
alive. A carrier this version cannot read (another version's, or garbage) continues nothing and
is logged once: it never raises into the work.

A carrier is trusted as it is: use it where the publisher is the app itself (its task broker),
never for what a client sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, cast

from .core.context import get_context
from .core.fields import TrackFields, validate_fields
from .core.log import warn_once
from .core.tracking import track_context

__all__ = ["CARRIER_KEY", "continue_context", "inject"]

CARRIER_KEY: Final = "payi-context"
_VERSION: Final = 1


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Put the effective context into `carrier` under `CARRIER_KEY`; return `carrier`."""
    fields = {name: value for name, value in get_context().model_dump().items() if value is not None}
    carrier[CARRIER_KEY] = json.dumps({"v": _VERSION, "fields": fields}, separators=(",", ":"))
    return carrier


def extract(carrier: Mapping[str, str]) -> dict[str, Any]:
    """The context fields `carrier` holds, validated; {} when it holds none or none this version reads."""
    raw = carrier.get(CARRIER_KEY)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
        if not (
            isinstance(data, dict) and data.get("v") == _VERSION and isinstance(data.get("fields"), dict)
        ):
            raise ValueError(f"not a version-{_VERSION} payi-web carrier")
        return dict(validate_fields("continue_context()", data["fields"]))
    except (TypeError, ValueError, RecursionError) as error:
        warn_once(
            "propagation-carrier",
            "payi_web: a context carrier could not be read (%s); the work goes on without its "
            "context. This is logged once.",
            error,
        )
        return {}


def continue_context(carrier: Mapping[str, str]) -> track_context:
    """The scope continuing the context `carrier` holds (see `inject`), derived from the scope
    around it by the usual rules: `with continue_context(headers): ...`."""
    return track_context(**cast(TrackFields, extract(carrier)))
