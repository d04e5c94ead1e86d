"""`LedgerFile`: the writer thread's connection to the ledger file, and its watch on that file.

A ledger deleted (`rm`) or emptied (`: > payi_ledger.sqlite3`) while the app runs leaves the open
connection writing on: into an unlinked inode, or into a WAL whose database file no longer says
it has one. Those commits succeed, and no reader ever sees them. So before each batch, and
again after its commit, the writer looks at the path (one `stat`): when it no longer holds the
file the connection opened, that is logged, the connection dropped, and the batch written to the
file now at the path, a new one (with the schema) if there is none. Several processes sharing the
file each notice it on their own; deleting it under them is still best avoided, since SQLite
finds a WAL and its index by the file's name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Sequence

from .schema import Row, connect, insert_rows, migrate

__all__ = ["LedgerFile", "LedgerFileLost"]

logger = logging.getLogger("payi_web.ledger")


class LedgerFileLost(OSError):
    """The file kept changing under a batch: deleted or replaced again while it was written."""


class LedgerFile:
    """One connection to the ledger at `path`, opened on the first `insert()`; one thread uses it."""

    def __init__(self, path: str, *, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file `_conn` opened

    def insert(self, rows: Sequence[Row]) -> None:
        """Insert `rows` in one transaction into the file at the path; raise when they cannot be."""
        for _attempt in range(2):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                insert_rows(conn, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if self._change() is None:
                return
            # The file went while this batch was written: it is in no file a reader can open.
            # The next attempt notices the change again, starts anew and writes it there.
        raise LedgerFileLost(f"{self.path} was deleted or replaced again while a batch was written to it")

    def close(self) -> None:
        conn, self._conn, self._identity = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            change = self._change()
            if change is not None:
                self._start_anew(change)
        conn = self._conn
        if conn is None:
            conn = connect(self.path, busy_timeout=self.busy_timeout)
            try:
                # After connect(): its WAL-mode pragma has created the file and written its first page.
                stat = os.stat(self.path)
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn, self._identity = conn, (stat.st_dev, stat.st_ino)
        return conn

    def _change(self) -> str | None:
        """How the file at the path differs from the one the connection opened; None: it is that one."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None  # e.g. a directory made unreadable: SQLite reports what that breaks
        if (stat.st_dev, stat.st_ino) != self._identity:
            return "replaced"
        if stat.st_size == 0:  # an SQLite file in WAL mode never is: its first page is written at once
            return "emptied"
        return None

    def _start_anew(self, change: str) -> None:
        logger.warning(
            "payi_web: the ledger %s was %s while the app ran; the records from now on go to the file "
            "at that path (created anew, with the schema, if there is none)",
            self.path,
            change,
        )
        # Closing the connection checkpoints its WAL into the database file: into the emptied one,
        # that would bring some old pages back among zeros, a corrupt file. Unlinked first, the
        # checkpoint goes to an inode no one opens again. (Looked at again just before, so that a
        # new file another process has made meanwhile is left alone.)
        if change == "emptied" and self._change() == "emptied":
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.close()
