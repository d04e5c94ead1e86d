"""The private parts of the standard library that payi-web reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from . import MissingPrivate

__all__ = ["running_loop"]


def _get_running_loop() -> Callable[[], asyncio.AbstractEventLoop | None]:
    get = getattr(asyncio, "_get_running_loop", None)
    if get is None:
        raise MissingPrivate("asyncio has no _get_running_loop()")
    return get  # type: ignore[no-any-return]


# The running event loop of this thread, or None: unlike the public `get_running_loop()`, no
# exception to raise and catch when there is none (most threads handed a bound callable).
running_loop: Final = _get_running_loop()
