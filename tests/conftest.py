from __future__ import annotations

from collections.abc import Iterator

import pytest

import payi_web


@pytest.fixture(autouse=True)
def _fresh_configuration() -> Iterator[None]:
    # configure() replaces the whole configuration, so resetting it isolates every test.
    payi_web.configure()
    yield
    payi_web.configure()
