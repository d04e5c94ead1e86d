"""The process-wide configuration (`Config`), replaced whole by each `configure()` call.

This module knows nothing of the sinks: `configure()` itself (`_configure.py`) validates its
arguments with the helpers here and the sinks' setups, then installs the result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Config", "current_config"]

DEFAULT_BASE_URL = "https://api.pay-i.com"


@dataclass(frozen=True)
class Config:
    """The effective configuration. Its repr never shows the API key."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    header_hosts: tuple[str, ...] = ()
    # The local ledger's file; None: off. (Resolved by configure() from its argument and PAYI_LEDGER.)
    ledger: str | None = None
    # {model: (input, output) USD per million tokens}: the ledger's estimated cost. Empty: no estimate.
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict, hash=False)

    def __repr__(self) -> str:
        key = "set" if self.api_key else "unset"
        return (
            f"Config(api_key=<{key}>, base_url={self.base_url!r}, header_hosts={self.header_hosts!r}, "
            f"ledger={self.ledger!r}, prices={dict(self.prices)!r})"
        )


# None until configure() runs; the first use without one configures from the environment.
_config: Config | None = None
_first_use = threading.Lock()
# `configure` itself, registered by `_configure.py` (imported with the package, before any use).
_configure: Callable[[], Config] | None = None


def current_config() -> Config:
    config = _config
    if config is None:
        with _first_use:
            # An app that never calls configure() still gets PAYI_API_KEY, PAYI_BASE_URL and the
            # default ledger, as `configure()` with no arguments would give it.
            config = _config
            if config is None:
                if _configure is None:
                    raise RuntimeError("payi_web: configure() is not registered (import payi_web first)")
                config = _configure()
    return config


def set_config(config: Config) -> None:
    """Make `config` the current one (`configure()` does, once it has validated everything)."""
    global _config
    _config = config


def configure_on_first_use(configure: Callable[[], Config]) -> None:
    """Register `configure` (called with no arguments) for a first use before any configure()."""
    global _configure
    _configure = configure


_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_prefix(where: str, value: object) -> str:
    """`value` as the clients' requests spell their URLs: scheme and host lower-case, no default
    port, no trailing slash; so that `https://API.pay-i.com:443/` matches what is sent."""
    if not isinstance(value, str):
        raise TypeError(f"configure(): {where} must be a URL string, got {type(value).__name__}")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"configure(): {where} must be an http(s) URL like 'https://host[:port][/path]' (no "
            f"credentials, query or fragment), got {value!r}"
        )
    host = parts.hostname  # lower-cased by urlsplit, IPv6 brackets removed
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path}".rstrip("/")


def clean_api_key(value: str | None) -> str | None:
    """The key as it goes into a header: surrounding whitespace (a newline from a secrets file)
    dropped; anything else a header cannot carry refused here, not on every call."""
    if value is None:
        return None
    key = value.strip()
    if not (key.isascii() and key.isprintable()):
        raise ValueError(
            "configure(): api_key (or PAYI_API_KEY) holds characters an HTTP header cannot carry "
            "(non-ASCII or control characters); check how it was pasted"
        )
    return key or None
