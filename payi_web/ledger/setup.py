"""Where the ledger lives, and the one ledger sink that `configure()` installs.

The file, by one rule shared by `configure()` and the report: the `PAYI_LEDGER` environment
variable if set, else the configured path (`configure(ledger=...)`, Django's `PAYI["LEDGER"]`,
Flask's `PAYI_LEDGER`), else `payi_ledger.sqlite3` in the working directory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Final

from ..core.records import InstalledSink
from .schema import Price
from .sink import LedgerSink

__all__ = [
    "DEFAULT_FILENAME",
    "ENV_VAR",
    "install",
    "installed_sink",
    "ledger_path",
    "resolve",
    "validate_prices",
]

DEFAULT_FILENAME: Final = "payi_ledger.sqlite3"
ENV_VAR: Final = "PAYI_LEDGER"

_installed: InstalledSink[LedgerSink] = InstalledSink()


def ledger_path(setting: str | os.PathLike[str] | bool | None = None) -> str:
    """The ledger file (absolute): `PAYI_LEDGER`, else `setting` if it is a path, else the default name."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = env
    elif isinstance(setting, (str, os.PathLike)) and os.fspath(setting):
        path = os.fspath(setting)
    else:
        path = DEFAULT_FILENAME
    return os.path.abspath(os.path.expanduser(path))


def resolve(setting: object, *, api_key: str | None) -> str | None:
    """The file `configure(ledger=setting)` writes, or None when the ledger is off.

    False: off. True or a path: on. None (not given): on when no Pay-i API key is configured,
    so that development and CI keep a local record of every call; off when one is.
    """
    if setting is not None and not isinstance(setting, (bool, str, os.PathLike)):
        raise TypeError(
            f"configure(): ledger must be a file path, True, False or None, got {type(setting).__name__}"
        )
    if isinstance(setting, (str, os.PathLike)) and not os.fspath(setting):
        raise ValueError("configure(): ledger must be a non-empty file path (False turns the ledger off)")
    if setting is False or (setting is None and api_key):
        return None
    return ledger_path(setting)


def validate_prices(prices: object) -> dict[str, Price]:
    """`{model: (input, output)}` in US dollars per million tokens, checked."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise TypeError(f"configure(): prices must be a dict, got {type(prices).__name__}")
    table: dict[str, Price] = {}
    for model, price in prices.items():
        if not isinstance(model, str) or not model:
            raise TypeError(f"configure(): prices keys must be model names (non-empty str), got {model!r}")
        if (
            not isinstance(price, (tuple, list))
            or len(price) != 2
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in price)
        ):
            raise TypeError(
                f"configure(): prices[{model!r}] must be (input, output) USD per million tokens, "
                f"got {price!r}"
            )
        if not all(math.isfinite(p) and p >= 0 for p in price):
            raise ValueError(f"configure(): prices[{model!r}] must be finite and not negative, got {price!r}")
        table[model] = (float(price[0]), float(price[1]))
    return table


def install(path: str | None, prices: Mapping[str, Price] | None = None) -> LedgerSink | None:
    """Make a ledger sink on `path` the installed one (None: none), retiring the previous one.

    Never touches the file: the new sink opens it on its first write, and the previous one
    writes what it held in the background (`payi_web.flush()` waits for that), since another
    process may hold the file's lock for seconds and configuration must not wait on it.
    """
    return _installed.replace(lambda: LedgerSink(path, prices=prices) if path else None)


def installed_sink() -> LedgerSink | None:
    """The ledger sink `configure()` installed, if any (e.g. to read its `stats` or `flush()` it)."""
    return _installed.sink
