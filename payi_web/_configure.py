"""`configure()`: the one place where the configuration and the sinks meet.

`config.py` holds the configuration and knows nothing of the sinks; each sink's setup
(`ledger/setup.py`, `ingest/setup.py`) knows nothing of `configure()`. Here every argument is
checked first (by `config.py`'s helpers and the setups'), so that a bad value raises before
anything changes; then the configuration is made current and the sinks installed to match it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .core.config import (
    DEFAULT_BASE_URL,
    Config,
    clean_api_key,
    configure_on_first_use,
    set_config,
    url_prefix,
)
from .core.context import EMPTY_FRAME, derive, set_root
from .core.fields import validate_fields
from .ingest import setup as ingest_setup
from .ledger import setup as ledger_setup

__all__ = ["configure"]


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
    if defaults is not None and not isinstance(defaults, Mapping):
        raise TypeError(f"configure(): defaults must be a dict, got {type(defaults).__name__}")
    root = derive(EMPTY_FRAME, validate_fields("configure(defaults)", dict(defaults or {})))
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"configure(): api_key must be str, got {type(api_key).__name__}")
    if isinstance(header_hosts, str) or not isinstance(header_hosts, Sequence):
        raise TypeError("configure(): header_hosts must be a list of URL prefixes")
    api_key = clean_api_key(api_key or os.environ.get("PAYI_API_KEY") or None)
    ingest = ingest_setup.wanted(api_key, root.proxy)
    if ingest:
        ingest_setup.check_available()  # a missing httpx fails here, before anything changes
    config = Config(
        api_key=api_key,
        base_url=url_prefix("base_url", base_url or os.environ.get("PAYI_BASE_URL") or DEFAULT_BASE_URL),
        header_hosts=tuple(url_prefix("header_hosts item", host) for host in header_hosts),
        ledger=ledger_setup.resolve(ledger, api_key=api_key),
        prices=ledger_setup.validate_prices(prices),
    )
    set_root(root)
    set_config(config)
    ledger_setup.install(config.ledger, config.prices)
    ingest_setup.install(api_key if ingest else None, config.base_url)
    return config


configure_on_first_use(configure)
