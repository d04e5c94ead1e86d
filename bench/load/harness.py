"""Start the provider and the servers, log the users in, drive the load, check every call, report.

For each server model, two servers of the same app run side by side: payi-web on and off
(`PAYI_LOAD=off`). Load goes to one at a time, in phases of `phase` requests in the order
on, off, off, on, on, off, ... (ABBA: drift on a shared 2-core machine hits both alike); the
throughput ratio is on/off over all timed phases of the run. Each phase, the provider's records
are drained and checked: a call of an "on" phase must carry exactly the user, account, use case
and request properties of the request that wrote its prompt; a call of an "off" phase must carry
no Pay-i header. After the ratio phases, the "on" server takes more phases alone until it has
served `memory_at[-1]` requests; its resident memory (the sum over its processes) is read when
it has served each of `memory_at`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.load.phases import User, check, login, run_phase, run_window
from bench.load.plans import (
    ASYNC_PLANS,
    ENV_DB,
    ENV_MODE,
    ENV_PROVIDER,
    ENV_SERVER,
    ENV_USERS,
    SYNC_PLANS,
    account,
    username,
)
from bench.load.processes import REPO, Process, base_env, machine_seconds, processes, wait_ready
from bench.load.report import mib, report

__all__ = ["MODELS", "ModelResult", "Options", "User", "check", "report", "run"]


def _gunicorn_version() -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in metadata.version("gunicorn").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return (0,)


# gunicorn >= 25.1 opens a control socket at one path per user: two servers at once would share it.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if _gunicorn_version() >= (25, 1) else []


# --- server models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    framework: str  # "django" | "flask"
    server: str  # "uvicorn" | "gunicorn"
    plans: tuple[str, ...]

    @property
    def login_path(self) -> str:
        return "/login/" if self.framework == "django" else "/login"

    @property
    def health_path(self) -> str:
        return "/health/" if self.framework == "django" else "/health"

    def command(self, threads: int) -> list[str]:
        """The server's command line; `{fd}` stands for the listening socket it inherits."""
        if self.server == "uvicorn":
            return [
                sys.executable,
                "-m",
                "bench.load.serve_asgi",
                "bench.load.django_app.asgi:application",
                "--fd",
                "{fd}",
            ]
        app = (
            "bench.load.django_app.wsgi:application"
            if self.framework == "django"
            else "bench.load.flask_app:app"
        )
        return [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            str(threads),
            "--bind",
            "fd://{fd}",
            "--keep-alive",
            "300",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            *_NO_CONTROL_SOCKET,
        ]

    def env(self, on: bool, provider: str, db: str, users: int) -> dict[str, str]:
        env = {
            ENV_MODE: "on" if on else "off",
            ENV_PROVIDER: provider,
            ENV_USERS: str(users),
        }
        if self.framework == "django":
            env[ENV_DB] = db
            env[ENV_SERVER] = "asgi" if self.server == "uvicorn" else "wsgi"
            env["DJANGO_SETTINGS_MODULE"] = "bench.load.django_app.settings"
        return env


MODELS = {
    m.name: m
    for m in (
        Model("django-uvicorn", "django", "uvicorn", ASYNC_PLANS),
        Model("django-gunicorn", "django", "gunicorn", SYNC_PLANS),
        Model("flask-gunicorn", "flask", "gunicorn", SYNC_PLANS),
    )
}


# --- results ----------------------------------------------------------------------------------------


# A phase whose machine lost more than this share of its CPU time to the hypervisor (steal: given
# to other guests) is not calm: on this shared host steal moves from 0% to 40% within seconds.
STEAL_LIMIT = 0.05


@dataclass
class ModeStats:
    requests: int = 0
    calls: int = 0
    seconds: float = 0.0  # timed phases only
    timed_requests: int = 0
    latencies: list[float] = field(default_factory=list)  # timed phases only, seconds
    cpu_seconds: float = 0.0  # the server's CPU time in timed phases
    phase_rates: list[float] = field(default_factory=list)
    phase_steal: list[float] = field(default_factory=list)  # share of the machine's CPU time stolen

    @property
    def throughput(self) -> float:
        return self.timed_requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / self.timed_requests * 1000 if self.timed_requests else float("nan")

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class ModelResult:
    model: str
    on: ModeStats = field(default_factory=ModeStats)
    off: ModeStats = field(default_factory=ModeStats)
    mismatches: int = 0
    missing: int = 0
    errors: int = 0
    examples: list[str] = field(default_factory=list)
    rss: dict[int, int] = field(default_factory=dict)  # requests the "on" server served -> its RSS
    log_issues: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Side-by-side windows: requests each server completed in the same seconds, (on, off).
    windows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.on.throughput / self.off.throughput if self.off.throughput else float("nan")

    @property
    def side_by_side_ratio(self) -> float | None:
        off = sum(off for _, off in self.windows)
        return sum(on for on, _ in self.windows) / off if off else None

    @property
    def pair_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.on.phase_rates, self.off.phase_rates, strict=False) if b]

    def ratio_interval(self, level: float = 0.95, resamples: int = 2000) -> tuple[float, float] | None:
        """How far noise alone moves the ratio: a bootstrap interval over the pairs (resampled with
        replacement, a fixed seed), each pair's phases weighing by their seconds per request."""
        on = [1 / rate for rate in self.on.phase_rates]
        off = [1 / rate for rate in self.off.phase_rates]
        n = min(len(on), len(off))
        if n < 2:
            return None
        rng = random.Random(0)
        ratios = []
        for _ in range(resamples):
            picks = [rng.randrange(n) for _ in range(n)]
            ratios.append(sum(off[i] for i in picks) / sum(on[i] for i in picks))
        ratios.sort()
        tail = int((1 - level) / 2 * resamples)
        return ratios[tail], ratios[resamples - 1 - tail]

    def calm_pairs(self, max_steal: float = STEAL_LIMIT) -> list[int]:
        """The pairs in which neither phase lost more than `max_steal` of the machine to steal."""
        steal = zip(self.on.phase_steal, self.off.phase_steal, strict=False)
        return [n for n, (on, off) in enumerate(steal) if on <= max_steal and off <= max_steal]

    @property
    def calm_ratio(self) -> float | None:
        """The ratio over the calm pairs' phases (the same requests per phase: rates average)."""
        pairs = self.calm_pairs()
        if not pairs:
            return None
        on = sum(1 / self.on.phase_rates[n] for n in pairs)  # seconds per request, summed
        off = sum(1 / self.off.phase_rates[n] for n in pairs)
        return off / on

    @property
    def memory_growth(self) -> float | None:
        if len(self.rss) < 2:
            return None
        points = sorted(self.rss)
        return self.rss[points[-1]] / self.rss[points[0]] - 1

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.missing == 0 and self.errors == 0

    def note(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)


@dataclass
class Options:
    models: tuple[str, ...] = tuple(MODELS)
    users: int = 64  # concurrent clients, one user each
    phase: int = 500  # requests per phase
    pairs: int = 4  # on/off pairs of timed phases
    windows: int = 0  # side-by-side windows: both servers loaded at once
    window_seconds: float = 4.0
    warmup: int = 200  # untimed (but checked) requests per server first
    memory_at: tuple[int, ...] = ()  # on-server requests served at which to read RSS
    memory_models: tuple[str, ...] | None = None  # None: every model
    threads: int = 16  # gunicorn gthread threads per worker
    plans: tuple[str, ...] | None = None  # only these plans (of the model's): for diagnosis
    provider_delay: float = 0.0  # seconds the provider waits before answering each GenAI call
    max_seconds: float = 1800  # the whole run
    log: Any = None  # a callable(str) for progress lines


# --- a model's run ----------------------------------------------------------------------------------


def _setup_django_db(db: str, count: int) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load.django_app.setup_db", str(count)],
        env={**base_env(), ENV_DB: db},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"setup_db failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def run_model(model: Model, options: Options, workdir: Path, deadline: float) -> ModelResult:
    log = options.log or (lambda text: None)
    result = ModelResult(model.name)
    started = time.perf_counter()
    if model.framework == "django":
        db = str(workdir / f"{model.name}.sqlite3")
        table = _setup_django_db(db, options.users)
        users = [User(name, *table[name]) for name in (username(n) for n in range(options.users))]
    else:
        db = ""
        users = [User(username(n), username(n), account(n)) for n in range(options.users)]
    measured = options.memory_models is None or model.name in options.memory_models
    memory_at = options.memory_at if measured else ()

    with processes() as procs:
        command = [sys.executable, "-m", "bench.load.provider", "--fd", "{fd}"]
        provider = Process("provider", [*command, "--delay", str(options.provider_delay)], {}, workdir)
        procs.append(provider)
        servers = {}
        for on in (True, False):
            name = f"{model.name}-{'on' if on else 'off'}"
            env = model.env(on, provider.url, db, options.users)
            proc = Process(name, model.command(options.threads), env, workdir)
            procs.append(proc)
            servers[on] = proc
        await wait_ready(provider, "/_stats")
        for proc in servers.values():
            await wait_ready(proc, model.health_path)
        conns = {on: await login(proc, model, users) for on, proc in servers.items()}
        plans = tuple(p for p in model.plans if p in options.plans) if options.plans else model.plans
        if not plans:
            raise ValueError(f"none of the plans {options.plans} is one of {model.name}'s: {model.plans}")
        served = 0
        phase_no = 0

        async def phase(on: bool, count: int, timed: bool, label: str = "warm-up") -> None:
            nonlocal served, phase_no
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run exceeded its time limit ({options.max_seconds:.0f}s)")
            phase_no += 1
            tag = f"{model.name}-{phase_no}{'on' if on else 'off'}"
            cpu, provider_cpu = servers[on].cpu_seconds(), provider.cpu_seconds()
            client_cpu, (idle, steal) = time.process_time(), machine_seconds()
            seconds, latencies = await run_phase(tag, on, conns[on], users, plans, count, provider, result)
            cpu = servers[on].cpu_seconds() - cpu
            provider_cpu = provider.cpu_seconds() - provider_cpu  # with its check's drain
            client_cpu = time.process_time() - client_cpu
            idle_after, steal_after = machine_seconds()
            capacity = seconds * (os.cpu_count() or 1)
            busy, steal = 1 - (idle_after - idle) / capacity, (steal_after - steal) / capacity
            stats = result.on if on else result.off
            if timed:
                stats.cpu_seconds += cpu
                stats.seconds += seconds
                stats.timed_requests += count
                stats.latencies.extend(latencies)
                stats.phase_rates.append(count / seconds)
                stats.phase_steal.append(steal)
            rss_read = []
            if on:
                served += count
                for point in memory_at:
                    if point not in result.rss and served >= point:
                        result.rss[point] = servers[True].rss_bytes()
                        rss_read.append(f"; RSS after {served} requests {mib(result.rss[point])} MiB")
            log(
                f"  {tag}: {count} requests in {seconds:.1f}s ({count / seconds:.0f}/s, server CPU "
                f"{cpu / count * 1000:.2f} ms/request, provider {provider_cpu / count * 1000:.2f}, "
                f"client {client_cpu / count * 1000:.2f}; machine {busy:.0%} busy, {steal:.0%} stolen)"
                f"{'' if timed else f' [{label}]'}; mismatches so far {result.mismatches}" + "".join(rss_read)
            )

        for on in (True, False):
            await phase(on, options.warmup, timed=False)
        for pair in range(options.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            for on in order:
                await phase(on, options.phase, timed=True)
        for _ in range(options.windows):
            phase_no += 1
            tag = f"{model.name}-{phase_no}"
            cpu = {on: proc.cpu_seconds() for on, proc in servers.items()}
            done = await run_window(tag, conns, users, plans, options.window_seconds, provider, result)
            cpu = {on: servers[on].cpu_seconds() - cpu[on] for on in servers}
            result.windows.append((done[True][0], done[False][0]))
            served += done[True][1]
            log(
                f"  {tag} side by side: {options.window_seconds:.0f}s, on {done[True][0]} requests "
                f"(server CPU {cpu[True]:.2f}s), off {done[False][0]} ({cpu[False]:.2f}s): "
                f"{done[True][0] / max(done[False][0], 1):.3f}; mismatches so far {result.mismatches}"
            )
        for point in sorted(memory_at):  # on alone, in phases that end exactly at each point
            while served < point:
                await phase(True, min(options.phase * 4, point - served), timed=False, label="memory")

        for conn_list in conns.values():
            for conn in conn_list:
                await conn.close()
        for proc in servers.values():
            if proc.popen.poll() is not None:
                result.errors += 1
                result.note(f"{proc.name} died: {proc.log_tail()}")
            result.log_issues += [f"{proc.name}: {line}" for line in proc.log_issues()]
    result.seconds = time.perf_counter() - started
    return result


async def run(options: Options) -> list[ModelResult]:
    deadline = time.monotonic() + options.max_seconds
    results = []
    with tempfile.TemporaryDirectory(prefix="payi-load-") as tmp:
        for name in options.models:
            if options.log:
                options.log(f"{name}:")
            results.append(await run_model(MODELS[name], options, Path(tmp), deadline))
    return results
