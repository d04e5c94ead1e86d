"""Every private name of another library that payi-web relies on, read in one place per library.

Each module here names what it reads and fails with `MissingPrivate` when a release of that
library no longer has it, so a test (tests/test_compat.py) catches the change on the first run
against that release, instead of payi-web silently doing less.
"""

from __future__ import annotations

__all__ = ["MissingPrivate"]


class MissingPrivate(AttributeError):
    """A private attribute payi-web relies on is missing from the installed library."""
