"""Several processes, one file: pre-forked workers, separate processes, and exit without flush()."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from payi_web.ledger import LedgerSink

from .helpers import count, make_call, rows

# Records `n` calls as process `name` into the ledger at `path` and exits without flushing.
WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone

    import payi_web
    from payi_web.core.context import TrackingContext
    from payi_web.core.records import CallRecord, Units, emit

    path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = payi_web.configure(ledger=path)
    assert config.ledger == path, config
    for i in range(n):
        emit(CallRecord(
            timestamp=datetime.now(timezone.utc), category="system.openai", resource="gpt-4o-mini",
            method="POST", url="https://api.openai.com/v1/chat/completions", status=200,
            latency_ms=1.0, time_to_first_token_ms=None, response_id=f"{name}-{i}", failed=False,
            streamed=False, proxied=False, context=TrackingContext(user_id=name),
            units={"text": Units(3, 2)}, headers={},
        ))
    # no flush(): interpreter exit must write what is queued
    """
)


def _env_without_ledger() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PAYI_LEDGER", None)  # the argument to configure() decides
    env.pop("PAYI_API_KEY", None)
    return env


def test_exit_flushes_without_an_explicit_flush(db: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, str(db), "solo", "2000"],
        check=True,
        timeout=60,
        env=_env_without_ledger(),
    )
    assert count(db) == 2000


def test_two_processes_writing_one_file_lose_nothing(db: Path) -> None:
    n = 3000
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, str(n)], env=_env_without_ledger())
        for name in ("p1", "p2")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    got = rows(db)
    assert Counter(row["user_id"] for row in got) == {"p1": n, "p2": n}
    assert {row["response_id"] for row in got} == {f"{p}-{i}" for p in ("p1", "p2") for i in range(n)}


def _worker(sink: LedgerSink, name: str, n: int) -> None:
    # A forked child: the inherited sink starts its own writer on the first record.
    for i in range(n):
        sink.record(make_call(context={"user_id": name}, response_id=f"{name}-{i}"))
    # no flush(): the multiprocessing child's exit (os._exit, no atexit) must still write them


@pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")
def test_pre_forked_workers_each_start_their_own_writer(db: Path) -> None:
    sink = LedgerSink(db)
    try:
        sink.record(make_call(context={"user_id": "parent"}, response_id="parent-0"))
        assert sink.flush(5)  # the parent's writer and connection exist before the fork
        ctx = multiprocessing.get_context("fork")
        workers = [ctx.Process(target=_worker, args=(sink, f"w{k}", 500)) for k in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        sink.record(make_call(context={"user_id": "parent"}, response_id="parent-1"))
        assert sink.flush(5)  # the parent goes on with its own writer
        assert sink.stats.written == 2  # the children's counts are theirs
    finally:
        sink.close(5)
    assert Counter(row["user_id"] for row in rows(db)) == {"parent": 2, "w0": 500, "w1": 500, "w2": 500}


@pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")
def test_a_forked_child_does_not_write_the_parents_queue(db: Path) -> None:
    sink = LedgerSink(db)
    try:
        sink.record(make_call(response_id="warm"))
        assert sink.flush(5)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            ok = sink.stats.written == 0 and sink.stats.queued == 0
            sink.record(make_call(response_id="child"))
            ok = sink.flush(10) and ok
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sink.flush(5)
    finally:
        sink.close(5)
    assert sorted(row["response_id"] for row in rows(db)) == ["child", "warm"]
