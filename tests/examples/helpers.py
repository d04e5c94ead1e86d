"""What the examples' tests share: their environment, the ledger, and the servers `make` starts."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The environment variables that would take an example off the offline model, or its ledger elsewhere.
ONLINE_KEYS = ("OPENAI_API_KEY", "PAYI_API_KEY", "PAYI_BASE_URL", "OPENAI_BASE_URL", "PAYI_LEDGER")


def offline_env(**extra: str) -> dict[str, str]:
    """This process's environment without API keys (the examples then use the offline model), and
    without the Django settings of the suite's own test project (tests/django sets them here)."""
    env = {k: v for k, v in os.environ.items() if k not in (*ONLINE_KEYS, "DJANGO_SETTINGS_MODULE")}
    env.update(extra)
    return env


def ledger_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ledger's calls, oldest first; JSON columns decoded."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in conn.execute("SELECT * FROM calls ORDER BY id")]
    finally:
        conn.close()
    for row in rows:
        for column in ("request_properties", "limit_ids", "use_case_properties"):
            if row[column] is not None:
                row[column] = json.loads(row[column])
    return rows


def properties(header: str) -> dict[str, str]:
    """A property header as the offline model received it (base64 JSON: its URL is a header host)."""
    return json.loads(base64.b64decode(header))  # type: ignore[no-any-return]


# --- the servers, started as `make demo` / `make demo-flask` start them --------------------------


def make_recipe(target: str) -> list[str]:
    """The commands of a Makefile target, as written."""
    text = (REPO / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, flags=re.M)
    assert match, f"no recipe for {target!r} in the Makefile"
    return [line.strip() for line in match.group(1).splitlines()]


def recipe_commands(target: str, port: int) -> list[list[str]]:
    """The target's commands, runnable from any directory: $(PY) is this interpreter, paths
    into the repository are absolute, and the server listens on `port`."""
    commands = []
    for line in make_recipe(target):
        argv = shlex.split(line.replace("$(PY)", shlex.quote(sys.executable)))
        argv = [str(REPO / arg) if (REPO / arg).is_file() and "/" in arg else arg for arg in argv]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(port)
        commands.append(argv)
    return commands


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def demo_server(
    target: str, cwd: Path, env: Mapping[str, str], timeout: float = 30
) -> Iterator[tuple[str, list[str]]]:
    """Run `make <target>`'s commands in `cwd`; yield the server's URL and its output lines so far.

    The setup commands run to completion first; the last (the server) runs until the block ends,
    then gets Ctrl+C (SIGINT), as from a terminal, so that it exits normally.
    """
    port = free_port()
    *setup, serve = recipe_commands(target, port)
    output: list[str] = []
    for argv in setup:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        output.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    log = cwd / f"{target}-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(serve, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for_port(port, process, timeout)
            yield f"http://127.0.0.1:{port}", output
        except BaseException:
            print(log.read_text())
            raise
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
    output.append(log.read_text())


def report(cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """`python -m payi_web report --format json`, run in `cwd` (as the README says, where the demo ran)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "payi_web",
            "report",
            "--format",
            "json",
            "--by",
            "account_name,user_id,use_case_name",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]
