"""Flushing a background worker's queue when its process ends, in every kind of process."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable

__all__ = ["ExitHooks"]


class ExitHooks:
    """Runs `flush_all` at interpreter exit, and in `multiprocessing` children too.

    A `multiprocessing` child ends with `os._exit()`, which skips `atexit`; its finalizers
    (registered after the child started, hence `ensure()` once per process that starts a
    worker) run instead.
    """

    def __init__(self, flush_all: Callable[[], None]) -> None:
        self._flush_all = flush_all
        self._pid: int | None = None
        atexit.register(flush_all)

    def ensure(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        if "multiprocessing" in sys.modules:
            from multiprocessing import util

            util.Finalize(None, self._flush_all, exitpriority=100)
