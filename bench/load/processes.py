"""The harness's child processes: each serves on a listening socket it inherits, its CPU, memory
and log read from outside."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from bench.load.client import Connection
from bench.load.phases import HOST

REPO = Path(__file__).resolve().parents[2]
_TICKS = os.sysconf("SC_CLK_TCK")


def base_env() -> dict[str, str]:
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
            env={**base_env(), **env},
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


def machine_seconds() -> tuple[float, float]:
    """The machine's idle time so far and the time its hypervisor gave its CPUs to others (steal),
    all CPUs (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[4]) + int(fields[5])) / _TICKS, int(fields[8]) / _TICKS  # idle + iowait, steal


async def wait_ready(proc: Process, path: str, timeout: float = 60) -> None:
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


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()
