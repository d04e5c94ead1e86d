"""`configure()`: the process-wide configuration, replaced whole by each call."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._fields import validate_fields
from .context import EMPTY_FRAME, derive, set_root
from .providers import proxy_paths

__all__ = ["Config", "configure", "current_config", "proxy_url"]

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


def current_config() -> Config:
    config = _config
    if config is None:
        with _first_use:
            # An app that never calls configure() still gets PAYI_API_KEY, PAYI_BASE_URL and the
            # default ledger, as `configure()` with no arguments would give it.
            config = _config if _config is not None else configure()
    return config


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _url_prefix(where: str, value: object) -> str:
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


def _api_key(value: str | None) -> str | None:
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


def configure(
    *,
    defaults: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    header_hosts: Sequence[str] = (),
    ledger: str | os.PathLike[str] | bool | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> Config:
    """Set the process-wide configuration; each call replaces the previous one whole.

    - `defaults`: application-wide context fields, the root scope that applies in every thread
      and task, computed once from an empty parent by the rules of `track()`.
    - `api_key`: Pay-i's API key (default: the `PAYI_API_KEY` environment variable). With a key,
      and `proxy` not True in `defaults`, every call made without the Pay-i proxy is reported to
      Pay-i in the background (ingest mode, see `payi_web.ingest`; needs httpx or httpx2).
    - `base_url`: Pay-i's URL (default: `PAYI_BASE_URL`, else https://api.pay-i.com).
    - `header_hosts`: further URL prefixes whose requests carry the Pay-i headers (an LLM gateway).
    - `ledger`: the local SQLite ledger of every call. Its file: `PAYI_LEDGER` if set, else this
      path, else `payi_ledger.sqlite3` in the working directory. `False` turns it off, `True` or a
      path on; by default it is on when no Pay-i API key is configured, off when one is.
    - `prices`: `{model: (input, output)}` US dollars per million tokens, for the ledger's
      estimated cost (none ship with payi-web); a call's `price_as_resource` is priced if given.

    Bad values raise `TypeError`/`ValueError` here, naming the argument. `configure()` with no
    arguments returns to the defaults.
    """
    global _config
    if defaults is not None and not isinstance(defaults, Mapping):
        raise TypeError(f"configure(): defaults must be a dict, got {type(defaults).__name__}")
    root = derive(EMPTY_FRAME, validate_fields("configure(defaults)", dict(defaults or {})))
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"configure(): api_key must be str, got {type(api_key).__name__}")
    if isinstance(header_hosts, str) or not isinstance(header_hosts, Sequence):
        raise TypeError("configure(): header_hosts must be a list of URL prefixes")
    from .ingest import setup as ingest_setup
    from .ledger import setup as ledger_setup

    api_key = _api_key(api_key or os.environ.get("PAYI_API_KEY") or None)
    ingest = ingest_setup.wanted(api_key, root.proxy)
    if ingest:
        ingest_setup.check_available()  # a missing httpx fails here, before anything changes
    config = Config(
        api_key=api_key,
        base_url=_url_prefix("base_url", base_url or os.environ.get("PAYI_BASE_URL") or DEFAULT_BASE_URL),
        header_hosts=tuple(_url_prefix("header_hosts item", host) for host in header_hosts),
        ledger=ledger_setup.resolve(ledger, api_key=api_key),
        prices=ledger_setup.validate_prices(prices),
    )
    set_root(root)
    _config = config
    ledger_setup.install(config.ledger, config.prices)
    ingest_setup.install(api_key if ingest else None, config.base_url)
    return config


def proxy_url(provider: str) -> str:
    """The Pay-i proxy's base URL for `provider`: e.g. `OpenAI(base_url=payi_web.proxy_url("openai"))`."""
    paths = proxy_paths()
    path = paths.get(provider)
    if path is None:
        raise ValueError(f"proxy_url(): unknown provider {provider!r}; known: {', '.join(paths)}")
    return current_config().base_url + path
