from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import payi_web
from payi_web.fake_provider import FakeProvider
from payi_web.ingest import DeliveryOptions, set_delivery_options

from .server import IngestServer

API_KEY = "payi-ingest-SECRET-key"

# Short pauses, so that faults heal within a test's time; everything else as shipped.
FAST = DeliveryOptions(initial_backoff=0.02, max_backoff=0.2, timeout=3.0, exit_timeout=5.0)


@pytest.fixture
def server() -> Iterator[IngestServer]:
    server = IngestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def ingest(server: IngestServer) -> Iterator[Callable[..., payi_web.Config]]:
    """configure() in ingest mode against `server`, with `FAST` delivery unless told otherwise."""

    def configure(options: DeliveryOptions = FAST, **kwargs: Any) -> payi_web.Config:
        set_delivery_options(options)
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", server.url)
        kwargs.setdefault("ledger", False)
        return payi_web.configure(**kwargs)

    yield configure
    payi_web.configure()  # the sink is retired: it delivers or gives up what it holds, in the background
    # ...and payi_web.flush() waits for it: here, so that its losses are this test's, not the next one's.
    payi_web.flush(10)
    set_delivery_options(None)
