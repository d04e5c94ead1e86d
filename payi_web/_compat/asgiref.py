"""The private parts of asgiref that payi-web's Django layer reads."""

from __future__ import annotations

from typing import Any

from asgiref.sync import SyncToAsync

from . import MissingPrivate

__all__ = ["in_asgiref_thread"]


def in_asgiref_thread() -> bool:
    """Whether this thread is one `sync_to_async` runs code in (asgiref records its event loop there)."""
    threadlocal: Any = getattr(SyncToAsync, "threadlocal", None)
    if threadlocal is None:
        raise MissingPrivate("asgiref.sync.SyncToAsync has no threadlocal")
    return getattr(threadlocal, "main_event_loop", None) is not None
