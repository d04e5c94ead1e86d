"""The one ingest sink that `configure()` installs, its delivery options, and its counters.

Ingest mode is on when a Pay-i API key is configured and the root context's `proxy` is not
True. `configure()` calls `check_available()` before it changes anything (so a missing HTTP
library fails there, with a clear message) and `install()` after.
"""

from __future__ import annotations

from ..core.records import InstalledSink
from .http import load_http
from .sink import DeliveryOptions, IngestSink, IngestStats

__all__ = [
    "check_available",
    "delivery_options",
    "install",
    "installed_sink",
    "set_delivery_options",
    "stats",
    "wanted",
]

_installed: InstalledSink[IngestSink] = InstalledSink()
_options = DeliveryOptions()


def wanted(api_key: str | None, root_proxy: bool | None) -> bool:
    return bool(api_key) and root_proxy is not True


def check_available() -> None:
    """Raise `IngestUnavailable` (an ImportError) when neither httpx nor httpx2 is installed."""
    load_http()


def install(api_key: str | None, base_url: str) -> IngestSink | None:
    """Make an ingest sink for `api_key` at `base_url` the installed one (None: none).

    The same key, URL and options keep the running sink. A replaced sink is retired: it takes no
    more records and delivers what it holds in the background, one last attempt each
    (`payi_web.flush()` waits for that); `configure()` never waits for the network.
    """
    options = _options
    if not api_key:
        return _installed.replace(lambda: None)
    return _installed.replace(
        lambda: IngestSink(api_key, base_url, options),
        keep=lambda old: old.matches(api_key, base_url, options),
    )


def installed_sink() -> IngestSink | None:
    """The ingest sink `configure()` installed, if any."""
    return _installed.sink


def stats() -> IngestStats:
    """Ingest counters of this process: sent, retried, failed, dropped, queued (zeros when off)."""
    sink = _installed.sink
    return sink.stats if sink is not None else IngestStats(enabled=False)


def delivery_options() -> DeliveryOptions:
    return _options


def set_delivery_options(options: DeliveryOptions | None = None) -> DeliveryOptions:
    """Use `options` (None: the defaults) for the ingest sink, now and for later `configure()` calls.

    A running sink is replaced by one with the new options (the old one delivers what it holds).
    """
    global _options
    if options is not None and not isinstance(options, DeliveryOptions):
        raise TypeError(f"set_delivery_options(): expected DeliveryOptions, got {type(options).__name__}")
    _options = options or DeliveryOptions()
    sink = _installed.sink
    if sink is not None:
        install(sink._api_key, sink.base_url)
    return _options
