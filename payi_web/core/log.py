"""Logging that never floods: each kind of problem is logged once per process."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("payi_web")

_seen: set[str] = set()
_lock = threading.Lock()


def warn_once(kind: str, message: str, *args: object, exc_info: bool = False) -> bool:
    """Log `message` at WARNING the first time `kind` happens; return whether it was logged."""
    with _lock:
        if kind in _seen:
            return False
        _seen.add(kind)
    logger.warning(message, *args, exc_info=exc_info)
    return True


def forget(kind: str) -> None:
    """Allow `kind` to be logged again (tests use it)."""
    with _lock:
        _seen.discard(kind)
