"""Delivery: off the request path, through faults, rejections, backlogs, forks and exit."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import payi_web
from payi_web.core.context import TrackingContext
from payi_web.core.records import CallRecord, Units, emit
from payi_web.fake_provider import FakeProvider
from payi_web.ingest import DeliveryOptions, installed_sink, stats
from tests.instrumented import CHAT, openai_client

from .conftest import API_KEY, FAST
from .server import IngestServer

OPENAI = "https://api.openai.com/v1"


def make_record(
    response_id: str,
    *,
    units: Mapping[str, Units] | None = None,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> CallRecord:
    values: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc),
        "category": "system.openai",
        "resource": "gpt-4o-mini",
        "method": "POST",
        "url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
        "latency_ms": 12.5,
        "time_to_first_token_ms": None,
        "response_id": response_id,
        "failed": False,
        "streamed": False,
        "proxied": False,
        "context": TrackingContext(user_id="u"),
        "units": {"text": Units(10, 5)} if units is None else units,
        "headers": {"xProxy-User-ID": "u"} if headers is None else headers,
    }
    values.update(fields)
    return CallRecord(**values)


def ask(client: Any, i: int) -> None:
    """One chat call whose response id (derived from the prompt) is distinct for each `i`."""
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}]
    )


def test_503_then_down_then_back_every_record_arrives_exactly_once(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI))
    server.fail_next(4, 503)
    for i in range(10):
        ask(client, i)
    assert server.wait_for(lambda s: len(s.received) >= 4)  # the 503s were answered
    server.stop()  # then Pay-i is unreachable for a while
    for i in range(10, 20):
        ask(client, i)
    time.sleep(0.8)  # several rounds of backoff against a closed port
    assert not payi_web.flush(0.2)
    assert stats().queued > 0 and stats().failed == 0
    server.start()  # back, on the same port
    assert payi_web.flush(10), stats()

    ids = [r.json["provider_response_id"] for r in server.received if r.status == 200]
    assert len(ids) == 20 and set(Counter(ids).values()) == {1}  # each exactly once
    assert [r.status for r in server.received].count(503) == 4
    counts = stats()
    assert (counts.sent, counts.failed, counts.dropped, counts.queued) == (20, 0, 0, 0)
    assert counts.retried >= 4


def test_401_is_not_retried_and_is_reported_without_the_key(
    ingest: Callable[..., Any],
    server: IngestServer,
    provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    server.status = 401
    server.error_body = {
        "xproxy_error": {"code": "invalid_api_key", "message": f"API key {API_KEY} is not valid"}
    }
    ledger = tmp_path / "ledger.sqlite3"
    ingest(ledger=ledger)
    client = payi_web.instrument(openai_client(provider, OPENAI))
    with caplog.at_level(logging.DEBUG, logger="payi_web"):
        ask(client, 1)
        assert not payi_web.flush(5)  # not delivered
        time.sleep(0.3)  # room for a retry that must not happen
    assert [r.status for r in server.received] == [401]
    counts = stats()
    assert (counts.sent, counts.retried, counts.failed, counts.queued) == (0, 0, 1, 0)
    assert counts.last_error == "HTTP 401: invalid_api_key: API key <api key> is not valid"
    assert "invalid_api_key: API key <api key> is not valid" in caplog.text
    assert API_KEY not in caplog.text and API_KEY not in repr(counts)
    # The local ledger, when enabled, holds every call: the undeliverable one is there, once.
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)


def test_a_slow_pay_i_never_slows_the_request(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    server.delay = 1.5
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI))
    ask(client, 0)  # the first call also starts the sender thread
    started = time.perf_counter()
    for i in range(1, 21):
        ask(client, i)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"20 calls took {elapsed:.2f} s while Pay-i sleeps 1.5 s per request"
    assert stats().queued == 21
    assert payi_web.flush(10)
    assert len(server.accepted) == 21


def test_a_backlog_of_1000_drains_fast_once_pay_i_is_back(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    ingest(options=replace(FAST, max_backoff=1.0))
    server.stop()
    for i in range(1000):
        emit(make_record(f"backlog-{i}"))
    time.sleep(1.0)  # Pay-i is down: the backlog waits, backing off to the cap
    assert stats().queued == 1000
    server.start()
    back = time.perf_counter()
    assert server.wait_for(lambda s: len(s.accepted) >= 1000, timeout=30)
    drained = time.perf_counter() - back
    print(f"\n1,000-event backlog drained in {drained:.2f} s after Pay-i came back")
    assert drained < 15
    assert payi_web.flush(5)
    assert sorted(server.accepted_ids()) == sorted(f"backlog-{i}" for i in range(1000))


def test_flush_reports_a_refusal_that_ended_before_it_once(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    server.status = 401
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI))
    ask(client, 1)
    deadline = time.monotonic() + 10
    while stats().failed < 1 and time.monotonic() < deadline:  # refused before anyone flushes
        time.sleep(0.01)
    assert stats().failed == 1
    assert not payi_web.flush(5)  # nothing is queued any more, yet that record was not delivered
    assert payi_web.flush(5)  # and it is reported once


def test_a_full_queue_drops_and_counts(ingest: Callable[..., Any], server: IngestServer) -> None:
    ingest(options=replace(FAST, max_queue=5))
    server.stop()
    for i in range(8):
        emit(make_record(f"q-{i}"))
    counts = stats()
    assert (counts.queued, counts.dropped) == (5, 3)
    server.start()
    assert payi_web.flush(10)
    assert sorted(server.accepted_ids()) == [f"q-{i}" for i in range(5)]


def test_a_record_pay_i_keeps_failing_is_given_up_while_others_go_through(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    server.decide = lambda request: 500 if b'"poison"' in request.body else None
    ingest(options=replace(FAST, max_attempts=3))
    emit(make_record("poison"))
    for i in range(20):
        emit(make_record(f"good-{i}"))
        time.sleep(0.01)
    assert payi_web.ingest.installed_sink() is not None
    assert server.wait_for(lambda s: stats().failed == 1 and stats().queued == 0)
    counts = stats()
    assert (counts.sent, counts.failed, counts.queued) == (20, 1, 0)
    # Three attempts counted; probes made alone while Pay-i looked down do not count.
    poisoned = [r.status for r in server.received if b'"poison"' in r.body]
    assert len(poisoned) >= 3 and set(poisoned) == {500}


def test_an_outage_does_not_use_up_a_records_attempts(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    ingest(options=replace(FAST, max_attempts=2))
    server.stop()
    emit(make_record("patient"))
    time.sleep(0.6)  # many more failed attempts than max_attempts
    server.start()
    assert payi_web.flush(5)
    assert server.accepted_ids() == ["patient"]
    assert stats().retried >= 2


def test_sender_threads_grow_with_a_backlog_and_leave_when_idle(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    server.delay = 0.05
    ingest(options=replace(FAST, concurrency=4, idle_timeout=0.2))
    sink = installed_sink()
    assert sink is not None
    for i in range(40):
        emit(make_record(f"g-{i}"))
    assert server.wait_for(lambda s: len(s.received) >= 8)
    assert 1 < sink._state.workers <= 4
    assert payi_web.flush(10)
    time.sleep(0.6)
    assert sink._state.workers == 1  # the extra senders left; one waits for the next record


def test_replacing_the_configuration_lets_the_old_sink_deliver(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    server.delay = 0.3
    ingest()
    old = installed_sink()
    assert old is not None
    emit(make_record("before"))
    payi_web.configure()  # no key: ingest off; returns at once
    emit(make_record("after"))  # not ingested
    assert server.wait_for(lambda s: old.stats.sent == 1, timeout=5)
    assert server.accepted_ids() == ["before"]


def test_flush_waits_for_the_sink_a_new_configuration_replaced(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    server.delay = 0.3
    ingest()
    old = installed_sink()
    assert old is not None
    emit(make_record("held"))
    ingest(base_url=server.url + "/elsewhere")  # a new sink; the old one still holds "held"
    assert installed_sink() is not old
    assert payi_web.flush(5)  # waits for the retired sink too
    assert old.stats.sent == 1 and old.stats.queued == 0
    assert server.accepted_ids() == ["held"]


def test_delivery_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        DeliveryOptions(max_queue=0)
    with pytest.raises(ValueError, match="max_backoff"):
        DeliveryOptions(max_backoff=-1)
    with pytest.raises(TypeError):
        payi_web.ingest.set_delivery_options({"max_queue": 5})  # type: ignore[arg-type]


# --- processes ----------------------------------------------------------------------------

EXITING = textwrap.dedent(
    """
    import sys

    import payi_web
    from payi_web.fake_provider import FakeProvider
    from tests.instrumented import openai_client

    payi_web.configure(api_key=sys.argv[1], base_url=sys.argv[2], ledger=False)
    client = payi_web.instrument(openai_client(FakeProvider(), "https://api.openai.com/v1"))
    for i in range(int(sys.argv[3])):
        client.embeddings.create(model="text-embedding-3-small", input=f"text {i}")
    # no flush(): interpreter exit must deliver what is queued
    """
)


def test_exit_delivers_what_is_queued(server: IngestServer) -> None:
    server.delay = 0.05  # still queued when the script ends
    env = {k: v for k, v in os.environ.items() if k != "PAYI_API_KEY"}
    subprocess.run(
        [sys.executable, "-c", EXITING, API_KEY, server.url, "25"],
        check=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert len(server.accepted) == 25


def _child_calls(name: str) -> None:
    client = payi_web.instrument(openai_client(FakeProvider(), OPENAI))
    with payi_web.track_context(user_id=name):
        for i in range(3):
            client.chat.completions.create(
                **{**CHAT, "messages": [{"role": "user", "content": f"{name} {i}"}]}
            )
    # no flush: the process ends with os._exit(), the ingest finalizer delivers


def test_forked_workers_deliver_their_own_calls(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    ingest()
    ask(payi_web.instrument(openai_client(provider, OPENAI)), 0)  # the parent's sender runs
    assert payi_web.flush(5)
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=_child_calls, args=(f"worker-{n}",)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    users = Counter(r.headers["xproxy-user-id"] for r in server.accepted if "xproxy-user-id" in r.headers)
    assert users == {"worker-0": 3, "worker-1": 3}
    assert len(server.accepted) == 7


def test_when_no_thread_can_start_records_are_delivered_in_the_calling_thread(
    ingest: Callable[..., Any], server: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import types

    from payi_web.core import writer as writer_module

    class NoThread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    fake = types.SimpleNamespace(**{**vars(threading), "Thread": NoThread})
    monkeypatch.setattr(writer_module, "threading", fake)
    ingest()  # a new sink, built with the patched module
    emit(make_record("at-shutdown"))
    assert server.accepted_ids() == ["at-shutdown"]  # already there: delivered inline
    assert stats().sent == 1 and payi_web.flush(1)
