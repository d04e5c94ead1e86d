"""What the local ledger costs: calls recorded per second, and the latency it adds on the calling thread.

Run with ``.venv/bin/python bench/ledger_throughput.py`` (about 30 s, offline, files in a temp dir).

Everything is measured in one run, against a no-op sink (a sink whose ``record`` does nothing):

- ``record()``: one call of the sink's ``record`` on the calling thread (for the ledger: the
  enqueue only; the writer thread does the SQLite work).
- ``emit()``: what an instrumented call runs when it ends: hand the record to every sink.
- instrumented call: a real ``openai.OpenAI`` chat completion, instrumented, inside a
  ``track_context``, answered in-process by an ``httpx2.MockTransport``: the whole call, with the
  ledger off and on (the ratio is what the ledger adds to a request).
- throughput: records per second from the first ``record()`` until ``flush()`` returns, i.e.
  committed to the file, from 1 and from 4 threads; its inverse is roughly the writer thread's
  CPU time per record, which it spends holding the GIL.
- the default queue (10,000 records) under a producer faster than the writer: what is written
  and what is dropped (and counted).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx2
import openai

import payi_web
from payi_web.core import records
from payi_web.core.context import TrackingContext
from payi_web.core.records import CallRecord, Units
from payi_web.ledger import LedgerSink


class NoopSink:
    def record(self, call: CallRecord) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True


CALL = CallRecord(
    timestamp=datetime.now(timezone.utc),
    category="system.openai",
    resource="gpt-4o-mini",
    method="POST",
    url="https://api.openai.com/v1/chat/completions",
    status=200,
    latency_ms=812.5,
    time_to_first_token_ms=None,
    response_id="chatcmpl-bench",
    failed=False,
    streamed=False,
    proxied=False,
    context=TrackingContext(
        use_case_name="summary",
        use_case_id="0b1c5f0e-4a8e-4d59-8a59-2d4a4b8f6d11",
        limit_ids=("monthly-cap",),
        user_id="user-42",
        account_name="acme",
        request_properties={"env": "bench"},
    ),
    units={"text": Units(1200, 300), "text_cache_read": Units(256, 0)},
    headers={},
)


def per_op_ns(
    op: Callable[[], None], n: int, repeat: int, between: Callable[[], None] = lambda: None
) -> float:
    """The median over `repeat` runs of the mean ns per `op()` in a run of `n`."""
    results = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(n):
            op()
        results.append((time.perf_counter_ns() - start) / n)
        between()
    return statistics.median(results)


def throughput(make: Callable[[], Any], n: int, threads: int) -> tuple[float, Any]:
    """Records per second from the first record() until flush() returns."""
    sink = make()
    per_thread = n // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        record = sink.record
        for _ in range(per_thread):
            record(CALL)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    assert sink.flush(120)
    elapsed = time.perf_counter() - start
    return per_thread * threads / elapsed, sink


def openai_client() -> openai.OpenAI:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=body))
    client = openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.invalid/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )
    return payi_web.instrument(client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per throughput run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.pop("PAYI_LEDGER", None)
    tmp = tempfile.TemporaryDirectory(prefix="payi-ledger-bench-")
    counter = iter(range(1_000_000))

    def fresh_ledger(**options: Any) -> LedgerSink:
        return LedgerSink(os.path.join(tmp.name, f"bench-{next(counter)}.sqlite3"), **options)

    print(
        f"Python {platform.python_version()} on {platform.machine()}, SQLite {sqlite3.sqlite_version}, "
        f"payi_web {payi_web.__version__}, {os.cpu_count()} CPUs"
    )
    rows: list[tuple[str, str, str, str]] = []

    # 1. record() on the calling thread: the enqueue alone (the writer waits until the flush
    # between runs), then flat out with the default settings (the writer competes for the GIL).
    n = 20_000
    noop = NoopSink()
    ledger = fresh_ledger(max_queue=n + 1, batch_size=n + 1, linger=3600)
    ledger.record(CALL)  # start the writer outside the timing
    ledger.flush(10)
    t_noop = per_op_ns(lambda: noop.record(CALL), n, args.repeat)
    t_ledger = per_op_ns(lambda: ledger.record(CALL), n, args.repeat, between=lambda: ledger.flush(60))
    assert ledger.stats.dropped == 0
    rows.append(
        (
            "record(), the enqueue alone",
            f"{t_noop:,.0f} ns",
            f"{t_ledger:,.0f} ns",
            f"{t_ledger / t_noop:.1f}x",
        )
    )
    rows.append(("  added by the ledger", "", f"{t_ledger - t_noop:,.0f} ns", ""))
    busy = fresh_ledger(max_queue=n + 1)
    busy.record(CALL)
    busy.flush(10)
    t_busy = per_op_ns(lambda: busy.record(CALL), n, args.repeat, between=lambda: busy.flush(60))
    assert busy.stats.dropped == 0
    busy.close()
    rows.append(
        (
            "record(), flat out, writer busy",
            f"{t_noop:,.0f} ns",
            f"{t_busy:,.0f} ns",
            f"{t_busy / t_noop:.1f}x",
        )
    )

    # 2. emit(): the sink registry, as an instrumented call ends.
    records.add_sink(noop)
    t_emit_noop = per_op_ns(lambda: records.emit(CALL), n, args.repeat)
    records.remove_sink(noop)
    records.add_sink(ledger)
    t_emit_ledger = per_op_ns(lambda: records.emit(CALL), n, args.repeat, between=lambda: ledger.flush(60))
    records.remove_sink(ledger)
    ledger.close()
    rows.append(
        (
            "emit() to the one sink",
            f"{t_emit_noop:,.0f} ns",
            f"{t_emit_ledger:,.0f} ns",
            f"{t_emit_ledger / t_emit_noop:.1f}x",
        )
    )

    # 3. A whole instrumented openai call, ledger off (no sink) and on (the default settings),
    # in alternating rounds so that a busy machine skews both alike.
    payi_web.configure(ledger=False)
    client = openai_client()
    messages: list[Any] = [{"role": "user", "content": "hi"}]

    def one_call() -> None:
        with payi_web.track_context(user_id="user-42", use_case_name="summary"):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    calls = 500
    for _ in range(200):
        one_call()  # warm up
    on_sink = fresh_ledger()
    offs, ons = [], []
    for _ in range(args.repeat):
        offs.append(per_op_ns(one_call, calls, 1))
        records.add_sink(on_sink)
        ons.append(per_op_ns(one_call, calls, 1))
        records.remove_sink(on_sink)
        assert on_sink.flush(60)
    on_sink.close()
    assert on_sink.stats.written == calls * args.repeat
    t_off, t_on = statistics.median(offs), statistics.median(ons)
    rows.append(
        (
            "instrumented openai call (mock transport)",
            f"{t_off / 1000:,.1f} µs off",
            f"{t_on / 1000:,.1f} µs on",
            f"{t_on / t_off:.3f}x",
        )
    )
    payi_web.configure(ledger=False)

    # 4. Throughput: committed to the file, from 1 and 4 threads (queue large enough to drop nothing).
    for threads in (1, 4):
        noop_rate, _ = throughput(NoopSink, args.records, threads)
        rate, sink = throughput(lambda: fresh_ledger(max_queue=args.records + 1), args.records, threads)
        stats = sink.stats
        assert stats.written == args.records // threads * threads and stats.dropped == 0, stats
        sink.close()
        rows.append(
            (
                f"throughput, {threads} thread(s), records/s",
                f"{noop_rate:,.0f}",
                f"{rate:,.0f}",
                f"{rate / noop_rate:.3f}x",
            )
        )

    # 5. The default queue (10,000) under a producer faster than the disk: drops, counted (and
    # logged, which is expected here and silenced).
    logging.getLogger("payi_web").setLevel(logging.CRITICAL)
    rate, sink = throughput(fresh_ledger, args.records, 1)
    stats = sink.stats
    sink.close()
    rows.append(
        ("  default queue, flat out: written / dropped", "", f"{stats.written:,} / {stats.dropped:,}", "")
    )

    widths = [max(len(r[i]) for r in [("", "no-op sink", "ledger", "ratio"), *rows]) for i in range(4)]
    header = ("", "no-op sink", "ledger", "ratio")
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
