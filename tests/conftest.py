from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import payi_web

pytest_plugins = ("pytester",)


@pytest.fixture(autouse=True, scope="session")
def _ledger_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # With no Pay-i API key the ledger is on by default: keep its file (and subprocesses') in a tmp dir.
    previous = os.environ.get("PAYI_LEDGER")
    os.environ["PAYI_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "payi_ledger.sqlite3")
    yield
    if previous is None:
        del os.environ["PAYI_LEDGER"]
    else:
        os.environ["PAYI_LEDGER"] = previous


@pytest.fixture(autouse=True)
def _fresh_configuration() -> Iterator[None]:
    # configure() replaces the whole configuration, so resetting it isolates every test.
    payi_web.configure()
    yield
    payi_web.uninstrument()
    payi_web.configure()
