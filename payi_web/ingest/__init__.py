"""Pay-i ingest mode: every tracked call reported to Pay-i, reliably, off the request path.

When a Pay-i API key is configured and the root context's `proxy` is not True, `configure()`
installs an `IngestSink`: each call record made without the proxy becomes one
`POST {base_url}/api/v1/ingest` (`event.py` builds it), delivered by background sender threads
with retries (`sink.py`) over httpx or httpx2 (`http.py`, imported only then).

    import payi_web.ingest

    payi_web.ingest.stats()  # IngestStats(enabled=True, sent=..., failed=..., dropped=..., queued=...)
"""

from __future__ import annotations

from .event import IngestEvent, build_event
from .http import IngestUnavailable
from .setup import delivery_options, installed_sink, set_delivery_options, stats
from .sink import DeliveryOptions, IngestSink, IngestStats

__all__ = [
    "DeliveryOptions",
    "IngestEvent",
    "IngestSink",
    "IngestStats",
    "IngestUnavailable",
    "build_event",
    "delivery_options",
    "installed_sink",
    "set_delivery_options",
    "stats",
]
