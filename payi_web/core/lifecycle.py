"""A background writer's process life: a forked child starts afresh, and exit flushes.

Every writer alive registers here. After `fork()` each one resets in the child (an empty
queue, no workers); at interpreter exit, and at a `multiprocessing` child's end, each one that
has work in this process finishes it, all by one deadline.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import weakref
from typing import Protocol

__all__ = ["Background", "ensure_exit_flush", "register", "unregister"]

logger = logging.getLogger("payi_web")


class Background(Protocol):
    exit_timeout: float  # how long interpreter exit waits for it (the longest of all of them is used)

    def _after_fork(self) -> None: ...  # in the child: start afresh

    def _busy(self) -> bool: ...  # has workers or queued work in this process

    def _at_exit(self, deadline: float) -> None: ...  # finish what is held by `deadline` (monotonic)


_live: weakref.WeakSet[Background] = weakref.WeakSet()
_finalizer_pid: int | None = None


def register(writer: Background) -> None:
    _live.add(writer)


def unregister(writer: Background) -> None:
    _live.discard(writer)


def ensure_exit_flush() -> None:
    """Called by each process that starts a worker: a `multiprocessing` child ends with
    `os._exit()`, which skips `atexit`; its finalizers (registered after the child started,
    hence once per process) run instead."""
    global _finalizer_pid
    pid = os.getpid()
    if _finalizer_pid == pid:
        return
    _finalizer_pid = pid
    if "multiprocessing" in sys.modules:
        from multiprocessing import util

        util.Finalize(None, _flush_all_at_exit, exitpriority=100)


def _after_fork_in_child() -> None:
    for writer in list(_live):
        writer._after_fork()


def _flush_all_at_exit() -> None:
    writers = [writer for writer in list(_live) if writer._busy()]
    if not writers:
        return
    deadline = time.monotonic() + max(writer.exit_timeout for writer in writers)
    for writer in writers:
        try:
            writer._at_exit(deadline)
        except Exception:  # exit goes on
            logger.debug("payi_web: flush at exit failed", exc_info=True)


atexit.register(_flush_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
