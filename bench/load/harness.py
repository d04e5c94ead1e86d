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

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.load.client import Connection
from bench.load.plans import (
    ANSWER,
    ASYNC_PLANS,
    ENV_DB,
    ENV_MODE,
    ENV_PROVIDER,
    ENV_SERVER,
    ENV_USERS,
    PASSWORD,
    SYNC_PLANS,
    account,
    use_case,
    username,
)

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
_ANSWER = ANSWER.encode()
_TICKS = os.sysconf("SC_CLK_TCK")


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


# --- processes --------------------------------------------------------------------------------------


def _base_env() -> dict[str, str]:
    """Every child's environment: no Pay-i key or ledger, proxy or Django settings; this repo importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("PAYI") or k == "PAYI_LOAD_PROFILE")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "django_settings_module")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(2048)
    return sock


class Process:
    """A child serving on a socket it inherits (so the port is known and never raced for)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.sock = _listen()
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        fd = self.sock.fileno()
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_command = [part.replace("{fd}", str(fd)) for part in command]
        self.popen = subprocess.Popen(
            full_command,
            pass_fds=(fd,),
            env={**_base_env(), **env},
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def pids(self) -> list[int]:
        """This process and its descendants (gunicorn's workers)."""
        found, todo = [], [self.popen.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo.extend(int(p) for p in f.read().split())
            except OSError:
                pass
        return found

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User and system CPU time so far, summed over this process and its descendants."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total / _TICKS

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_issues(self) -> list[str]:
        """Lines of the server's log that say something went wrong (payi-web warnings, tracebacks)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        keys = ("payi_web", "Traceback", "Error", "WARNING", "CRITICAL")
        return [line for line in text.splitlines() if any(key in line for key in keys)]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.sock.close()
        self._log.close()


def _idle_seconds() -> float:
    """The machine's idle time so far, all CPUs (Linux; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / _TICKS  # idle, iowait


async def _wait_ready(proc: Process, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        conn = Connection(HOST, proc.port, timeout=5)
        try:
            response = await conn.request("GET", path)
            if response.status == 200:
                return
        except (OSError, asyncio.TimeoutError, Exception):
            pass
        finally:
            await conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not answer {path} within {timeout}s:\n{proc.log_tail()}")
        await asyncio.sleep(0.1)


# --- results ----------------------------------------------------------------------------------------


@dataclass
class ModeStats:
    requests: int = 0
    calls: int = 0
    seconds: float = 0.0  # timed phases only
    timed_requests: int = 0
    latencies: list[float] = field(default_factory=list)  # timed phases only, seconds
    cpu_seconds: float = 0.0  # the server's CPU time in timed phases
    phase_rates: list[float] = field(default_factory=list)

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

    @property
    def ratio(self) -> float:
        return self.on.throughput / self.off.throughput if self.off.throughput else float("nan")

    @property
    def pair_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.on.phase_rates, self.off.phase_rates, strict=False) if b]

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
    warmup: int = 200  # untimed (but checked) requests per server first
    memory_at: tuple[int, ...] = ()  # on-server requests served at which to read RSS
    memory_models: tuple[str, ...] | None = None  # None: every model
    threads: int = 16  # gunicorn gthread threads per worker
    plans: tuple[str, ...] | None = None  # only these plans (of the model's): for diagnosis
    provider_delay: float = 0.0  # seconds the provider waits before answering each GenAI call
    max_seconds: float = 1800  # the whole run
    log: Any = None  # a callable(str) for progress lines


# --- one phase ----------------------------------------------------------------------------------


@dataclass
class User:
    name: str
    user_id: str
    account: str


async def _login(proc: Process, model: Model, users: list[User]) -> list[Connection]:
    conns = []
    for user in users:
        conn = Connection(HOST, proc.port)
        body = f"username={user.name}&password={PASSWORD}".encode()
        response = await conn.request(
            "POST", model.login_path, {"content-type": "application/x-www-form-urlencoded"}, body
        )
        if response.status != 200:
            raise RuntimeError(
                f"{proc.name}: login of {user.name} failed: {response.status} {response.body[:200]!r}"
            )
        answer = json.loads(response.body)
        if [answer["user_id"], answer["account"]] != [user.user_id, user.account] or not conn.cookies:
            raise RuntimeError(f"{proc.name}: login of {user.name} answered {answer} (no session cookie?)")
        conns.append(conn)
    return conns


async def _drain(provider: Process) -> list[list[Any]]:
    conn = Connection(HOST, provider.port)
    try:
        response = await conn.request("GET", "/_records")
    finally:
        await conn.close()
    return json.loads(response.body)  # type: ignore[no-any-return]


async def _phase(
    tag: str,
    on: bool,
    conns: list[Connection],
    users: list[User],
    plans: tuple[str, ...],
    count: int,
    provider: Process,
    result: ModelResult,
) -> tuple[float, list[float]]:
    """`count` requests from all users at once, then the provider's records checked: (seconds, latencies)."""
    expected: dict[str, tuple[User, str]] = {}
    latencies: list[float] = []
    next_index = iter(range(count))

    async def one_user(u: int) -> None:
        conn, user = conns[u], users[u]
        for i in next_index:
            plan = plans[(i + u) % len(plans)]
            request_id = f"{tag}-{i}"
            expected[request_id] = (user, plan)
            started = time.perf_counter()
            try:
                response = await conn.request("GET", f"/chat/{plan}/", {"X-Request-Id": request_id})
            except Exception as exc:
                result.errors += 1
                result.note(f"{tag}: request {request_id} ({plan}) failed: {exc!r}")
                continue
            latencies.append(time.perf_counter() - started)
            if response.status != 200 or response.body.count(_ANSWER) != len(plan):
                result.errors += 1
                result.note(
                    f"{tag}: {request_id} ({plan}) answered {response.status}: {response.body[:200]!r}"
                )

    started = time.perf_counter()
    await asyncio.gather(*(one_user(u) for u in range(len(conns))))
    seconds = time.perf_counter() - started

    stats = result.on if on else result.off
    stats.requests += count
    check(tag, on, expected, await _drain(provider), result)
    return seconds, latencies


def check(
    tag: str, on: bool, expected: dict[str, tuple[User, str]], records: list[list[Any]], result: ModelResult
) -> None:
    """Count the mismatches and missing calls among the provider's `records` of one phase.

    `expected`: request id -> (the user who sent it, its plan). With payi-web on, each call must
    carry exactly its request's user, account, use case and request properties; off, no Pay-i
    header. Each planned call must arrive once.
    """
    stats = result.on if on else result.off
    seen: set[tuple[str, str]] = set()
    for rid, kind, user_id, account_name, use_case_name, properties, any_payi in records:
        stats.calls += 1
        found = expected.get(rid)
        if found is None or kind not in found[1] or (rid, kind) in seen:
            result.mismatches += 1
            result.note(f"{tag}: a call no request of this phase made, or made twice: {rid} {kind}")
            continue
        seen.add((rid, kind))
        user, plan = found
        if on:
            got = (user_id, account_name, use_case_name, properties)
            want = (user.user_id, user.account, use_case(plan), {"request_id": rid, "call": kind})
            if got != want:
                result.mismatches += 1
                result.note(f"{tag}: call {kind} of {rid} carried {got}, expected {want}")
        elif any_payi:
            result.mismatches += 1
            result.note(f"{tag}: call {kind} of {rid} carried Pay-i headers with payi-web off")
    missing = sum(len(plan) for _, plan in expected.values()) - len(seen)
    if missing:
        result.missing += missing
        result.note(f"{tag}: {missing} calls never reached the provider")


# --- a model's run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()


def _setup_django_db(db: str, count: int) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load.django_app.setup_db", str(count)],
        env={**_base_env(), ENV_DB: db},
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

    with _processes() as procs:
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
        await _wait_ready(provider, "/_stats")
        for proc in servers.values():
            await _wait_ready(proc, model.health_path)
        conns = {on: await _login(proc, model, users) for on, proc in servers.items()}
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
            client_cpu, idle = time.process_time(), _idle_seconds()
            seconds, latencies = await _phase(tag, on, conns[on], users, plans, count, provider, result)
            cpu = servers[on].cpu_seconds() - cpu
            provider_cpu = provider.cpu_seconds() - provider_cpu  # with its check's drain
            client_cpu = time.process_time() - client_cpu
            busy = 1 - (_idle_seconds() - idle) / (seconds * (os.cpu_count() or 1))
            stats = result.on if on else result.off
            if timed:
                stats.cpu_seconds += cpu
                stats.seconds += seconds
                stats.timed_requests += count
                stats.latencies.extend(latencies)
                stats.phase_rates.append(count / seconds)
            rss_read = []
            if on:
                served += count
                for point in memory_at:
                    if point not in result.rss and served >= point:
                        result.rss[point] = servers[True].rss_bytes()
                        rss_read.append(f"; RSS after {served} requests {_mib(result.rss[point])} MiB")
            log(
                f"  {tag}: {count} requests in {seconds:.1f}s ({count / seconds:.0f}/s, server CPU "
                f"{cpu / count * 1000:.2f} ms/request, provider {provider_cpu / count * 1000:.2f}, "
                f"client {client_cpu / count * 1000:.2f}; machine {busy:.0%} busy)"
                f"{'' if timed else f' [{label}]'}; mismatches so far {result.mismatches}" + "".join(rss_read)
            )

        for on in (True, False):
            await phase(on, options.warmup, timed=False)
        for pair in range(options.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            for on in order:
                await phase(on, options.phase, timed=True)
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


# --- the report -----------------------------------------------------------------------------------


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _count(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n else str(n)


def report(results: list[ModelResult], options: Options) -> str:
    """The figures as a Markdown table, and what went wrong if anything did."""
    points = " / ".join(_count(p) for p in sorted(options.memory_at)) or "-"
    head = (
        "| server model | requests | calls | mismatches | req/s on | req/s off | ratio on/off | "
        "p50 on / off (ms) | p99 on / off (ms) | server CPU on / off (ms/request) | "
        f"RSS after {points} (MiB) | growth |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        requests = r.on.requests + r.off.requests
        calls = r.on.calls + r.off.calls
        rss = " / ".join(f"{_mib(r.rss[p])}" for p in sorted(r.rss)) or "-"
        growth = "-" if r.memory_growth is None else f"{r.memory_growth * 100:+.1f}%"
        lines.append(
            f"| {r.model} | {requests} | {calls} | {r.mismatches} | {r.on.throughput:.0f} | "
            f"{r.off.throughput:.0f} | {r.ratio:.3f} | {r.on.percentile(0.5) * 1000:.1f} / "
            f"{r.off.percentile(0.5) * 1000:.1f} | {r.on.percentile(0.99) * 1000:.1f} / "
            f"{r.off.percentile(0.99) * 1000:.1f} | {r.on.cpu_ms_per_request:.2f} / "
            f"{r.off.cpu_ms_per_request:.2f} | {rss} | {growth} |"
        )
    out = ["\n".join(lines), ""]
    for r in results:
        pairs = ", ".join(f"{x:.2f}" for x in r.pair_ratios)
        median = statistics.median(r.pair_ratios) if r.pair_ratios else float("nan")
        out.append(
            f"{r.model}: {r.seconds:.0f}s; on {r.on.requests} requests / {r.on.calls} calls, off "
            f"{r.off.requests} / {r.off.calls}; missing calls {r.missing}; request errors {r.errors}; "
            f"ratio of each on/off pair [{pairs}], median {median:.3f}"
        )
        for example in r.examples:
            out.append(f"  ! {example}")
        for line in r.log_issues[:10]:
            out.append(f"  log: {line}")
    return "\n".join(out)
