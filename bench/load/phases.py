"""What the harness sends and checks: logins, timed phases, side-by-side windows, the records check.

A phase sends `count` requests to one server from all users at once. A side-by-side window loads
both servers at once, each from its own connections of the same users, for a fixed time: both
then share the machine at the same moments, so the ratio of the requests each completed in that
time is free of the drift that moves one phase against the next. After each, the provider's
records are drained and every call checked against the request that made it (`check`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.load.client import Connection
from bench.load.plans import ANSWER, PASSWORD, use_case

if TYPE_CHECKING:
    from bench.load.harness import Model, ModelResult
    from bench.load.processes import Process

HOST = "127.0.0.1"
_ANSWER = ANSWER.encode()


@dataclass
class User:
    name: str
    user_id: str
    account: str


async def login(proc: Process, model: Model, users: list[User]) -> list[Connection]:
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


async def drain(provider: Process) -> list[list[Any]]:
    conn = Connection(HOST, provider.port)
    try:
        response = await conn.request("GET", "/_records")
    finally:
        await conn.close()
    return json.loads(response.body)  # type: ignore[no-any-return]


async def _send(conn: Connection, tag: str, plan: str, request_id: str, result: ModelResult) -> bool:
    """One chat request; False (and noted) if it failed or did not answer each of its calls."""
    try:
        response = await conn.request("GET", f"/chat/{plan}/", {"X-Request-Id": request_id})
    except Exception as exc:
        result.errors += 1
        result.note(f"{tag}: request {request_id} ({plan}) failed: {exc!r}")
        return False
    if response.status != 200 or response.body.count(_ANSWER) != len(plan):
        result.errors += 1
        result.note(f"{tag}: {request_id} ({plan}) answered {response.status}: {response.body[:200]!r}")
    return True


async def run_phase(
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
            if await _send(conn, tag, plan, request_id, result):
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one_user(u) for u in range(len(conns))))
    seconds = time.perf_counter() - started

    stats = result.on if on else result.off
    stats.requests += count
    check(tag, on, expected, await drain(provider), result)
    return seconds, latencies


async def run_window(
    tag: str,
    conns: dict[bool, list[Connection]],
    users: list[User],
    plans: tuple[str, ...],
    seconds: float,
    provider: Process,
    result: ModelResult,
) -> dict[bool, tuple[int, int]]:
    """Both servers at once for `seconds`: {on: (requests completed in that time, requests sent)}."""
    expected: dict[bool, dict[str, tuple[User, str]]] = {True: {}, False: {}}
    completed = {True: 0, False: 0}
    deadline = time.perf_counter() + seconds

    async def one_user(on: bool, u: int) -> None:
        conn, user = conns[on][u], users[u]
        i = 0
        while time.perf_counter() < deadline:
            plan = plans[(i + u) % len(plans)]
            request_id = f"{tag}{'on' if on else 'off'}-{u}-{i}"
            i += 1
            expected[on][request_id] = (user, plan)
            if await _send(conn, tag, plan, request_id, result) and time.perf_counter() <= deadline:
                completed[on] += 1

    await asyncio.gather(*(one_user(on, u) for on in (True, False) for u in range(len(users))))
    records = await drain(provider)
    for on in (True, False):
        result_stats = result.on if on else result.off
        result_stats.requests += len(expected[on])
        mine = [record for record in records if record[0] in expected[on]]
        check(f"{tag}{'on' if on else 'off'}", on, expected[on], mine, result)
    stray = [r for r in records if r[0] not in expected[True] and r[0] not in expected[False]]
    if stray:
        result.mismatches += len(stray)
        result.note(f"{tag}: {len(stray)} calls no request of this window made, e.g. {stray[0][:2]}")
    return {on: (completed[on], len(expected[on])) for on in (True, False)}


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
