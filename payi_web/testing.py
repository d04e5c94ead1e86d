"""Test helpers for applications: capture the tracked calls and the headers that went out.

    from payi_web.testing import capture_calls

    with capture_calls() as calls:
        client.chat.completions.create(...)
    assert calls[0].context.user_id == "42"

With pytest, the `payi_calls` fixture does the same (registered through the `pytest11` entry
point, so it is available as soon as payi-web is installed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .core.records import CallRecord, add_sink, remove_sink

__all__ = ["CapturedCalls", "capture_calls", "payi_calls"]


class CapturedCalls(list[CallRecord]):
    """The records of the calls made while capturing, in the order they ended. Thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self.append(call)

    def flush(self, timeout: float | None = None) -> bool:
        return True


@contextmanager
def capture_calls() -> Iterator[CapturedCalls]:
    """Capture every call record made inside the block (from any thread)."""
    calls = CapturedCalls()
    add_sink(calls)
    try:
        yield calls
    finally:
        remove_sink(calls)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture
    def payi_calls() -> Iterator[CapturedCalls]:
        """The GenAI calls tracked during the test (see `capture_calls`)."""
        with capture_calls() as calls:
            yield calls
