"""The load harness's apps driven in process, one request at a time: what payi-web adds per request.

    python -m bench.load.inprocess                  # CPU µs per request, on vs off (alternating runs)
    python -m bench.load.inprocess --cachegrind     # instructions per request (valgrind): exact
    python -m bench.load.inprocess --frameworks flask --plans y,ts --requests 1000

The throughput ratio of `python -m bench.load` moves by several points from run to run on a
shared 2-core machine. This weighs the same request path without servers, threads or a load
generator: each framework's app (the harness's own, `PAYI_LOAD=on` and `off`, each in a fresh
process) is called through its test client, a logged-in user per request in turn, the GenAI calls
going to the harness's fake provider. With `--cachegrind`, each count is the difference between
a run of `--requests` requests and a run of none (start-up and warm-up cancel out), repeatable to
about 0.3% whatever else the machine does. The ratio printed is on/off: the cost of a request
with payi-web, the request without it being 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.load.harness import _setup_django_db
from bench.load.plans import (
    ENV_DB,
    ENV_MODE,
    ENV_PROVIDER,
    ENV_SERVER,
    ENV_USERS,
    PASSWORD,
    SYNC_PLANS,
    username,
)
from bench.load.processes import REPO, base_env


def _users(threads: int) -> int:
    return max(8, threads)


# --- the child: one app, one mode ------------------------------------------------------------------


def _flask_requester(users: int) -> Any:
    from bench.load.flask_app import app

    clients = []
    for n in range(users):
        client = app.test_client()
        assert client.post("/login", data={"username": username(n), "password": PASSWORD}).status_code == 200
        clients.append(client)

    def request(n: int, plan: str, rid: str) -> None:
        response = clients[n % users].get(f"/chat/{plan}/", headers={"X-Request-Id": rid})
        body = response.get_data()
        assert response.status_code == 200, body[:200]
        response.close()

    return request


def _django_requester(users: int) -> Any:
    import django

    django.setup()
    from django.test import Client

    clients = []
    for n in range(users):
        client = Client()
        assert client.post("/login/", {"username": username(n), "password": PASSWORD}).status_code == 200
        clients.append(client)

    def request(n: int, plan: str, rid: str) -> None:
        response = clients[n % users].get(f"/chat/{plan}/", headers={"X-Request-Id": rid})
        if response.streaming:
            b"".join(response.streaming_content)
        assert response.status_code == 200, response.content[:200] if not response.streaming else ""
        response.close()

    return request


def child(framework: str, plans: list[str], warmup: int, count: int, threads: int) -> None:
    """Warm up, then time `count` requests (over `threads` threads); print the CPU seconds they took."""
    users = _users(threads)
    request = _flask_requester(users) if framework == "flask" else _django_requester(users)
    for i in range(warmup):
        request(i, plans[i % len(plans)], f"w-{i}")

    def run(first: int) -> None:
        # One user (a test client with its cookies) per thread, as a connection to a server.
        for i in range(first, count, threads):
            request(first, plans[i % len(plans)], f"m-{i}")

    started = time.process_time()
    if threads == 1:
        run(0)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, range(threads)))
    print(json.dumps({"cpu": time.process_time() - started}))


# --- the parent ------------------------------------------------------------------------------------


def _env(framework: str, on: bool, provider: str, db: str, users: int) -> dict[str, str]:
    env = {**base_env(), ENV_MODE: "on" if on else "off", ENV_PROVIDER: provider, ENV_USERS: str(users)}
    if framework == "django":
        env.update(
            {ENV_DB: db, ENV_SERVER: "wsgi", "DJANGO_SETTINGS_MODULE": "bench.load.django_app.settings"}
        )
    return env


def _run_child(
    framework: str, on: bool, args: argparse.Namespace, count: int, provider: str, db: str
) -> float:
    """CPU seconds of `count` requests, or (cachegrind) instructions."""
    command = [sys.executable, "-m", "bench.load.inprocess", "--child", framework, "--plans", args.plans]
    command += ["--warmup", str(args.warmup), "--requests", str(count), "--threads", str(args.threads)]
    env = _env(framework, on, provider, db, _users(args.threads))
    if not args.cachegrind:
        out = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
        return float(json.loads(out.stdout.strip().splitlines()[-1])["cpu"])
    with tempfile.NamedTemporaryFile(prefix="payi-cg-") as out_file:
        valgrind = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out_file.name}",
        ]
        # Same hash seed and address layout every time: the counts repeat.
        env["PYTHONHASHSEED"] = "0"
        subprocess.run(
            ["setarch", os.uname().machine, "-R", *valgrind, *command],
            env=env,
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        for line in Path(out_file.name).read_text().splitlines():
            if line.startswith("summary:"):
                return float(line.split()[1])
    raise RuntimeError("cachegrind wrote no summary")


def _measure(framework: str, args: argparse.Namespace, provider: str, db: str) -> dict[bool, float]:
    """Per request: CPU µs (median of alternating runs) or instructions (N minus 0 requests)."""
    if args.cachegrind:
        jobs = [(on, count) for on in (True, False) for count in (0, args.requests)]
        with ThreadPoolExecutor(2) as pool:  # 2 cores: two valgrinds at once
            counts = pool.map(lambda job: _run_child(framework, job[0], args, job[1], provider, db), jobs)
            totals = dict(zip(jobs, counts, strict=True))
        return {on: (totals[(on, args.requests)] - totals[(on, 0)]) / args.requests for on in (True, False)}
    samples: dict[bool, list[float]] = {True: [], False: []}
    for round_no in range(args.rounds):
        for on in (True, False) if round_no % 2 == 0 else (False, True):
            samples[on].append(
                _run_child(framework, on, args, args.requests, provider, db) / args.requests * 1e6
            )
    return {on: statistics.median(values) for on, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load.inprocess", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--frameworks", default="flask,django")
    parser.add_argument("--plans", default=",".join(SYNC_PLANS), help="the sync plans, in turn")
    parser.add_argument("--requests", type=int, help="timed requests per run (default 1500; cachegrind 100)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6, help="on/off runs each, alternating (CPU time only)")
    parser.add_argument("--cachegrind", action="store_true", help="count instructions with valgrind")
    parser.add_argument(
        "--threads", type=int, default=1, help="requests from this many threads at once (a threaded server)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plans = [plan for plan in args.plans.split(",") if plan]
    if args.child:
        child(args.child, plans, args.warmup, args.requests, args.threads)
        return 0
    args.requests = args.requests or (100 if args.cachegrind else 1500)
    if args.cachegrind and shutil.which("valgrind") is None:
        parser.error("--cachegrind needs valgrind (Debian: apt-get install valgrind)")
    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.load.provider", "--port", "0"],
        env=base_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    unit = "instructions" if args.cachegrind else "CPU µs"
    print(f"| app | plans | {unit} per request, on | off | on/off |\n|---|---|---|---|---|")
    try:
        url = provider.stdout.readline().strip()  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory(prefix="payi-inprocess-") as tmp:
            for framework in args.frameworks.split(","):
                db = str(Path(tmp) / "django.sqlite3")
                if framework == "django":
                    _setup_django_db(db, _users(args.threads))
                cost = _measure(framework, args, url, db)
                shown = {
                    on: f"{cost[on] / 1000:,.1f}k" if args.cachegrind else f"{cost[on]:,.0f}" for on in cost
                }
                ratio = cost[True] / cost[False]
                print(
                    f"| {framework} | {args.plans} | {shown[True]} | {shown[False]} | {ratio:.3f} |",
                    flush=True,
                )
    finally:
        provider.terminate()
        provider.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
