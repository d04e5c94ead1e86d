"""`python -m bench.load [--full] [options]`: the load and isolation harness (see `bench/README.md`).

Exit status 1 if any call carried another request's attribution (or a call went missing, or a
request failed); with `--check`, also if the throughput ratio or the memory target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time

from bench.load.harness import MODELS, Options, report, run

RATIO_TARGET = 0.95
MEMORY_TARGET = 0.05


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument(
        "--full",
        action="store_true",
        help="the README's run: 40 on/off pairs of 250 requests per model; RSS after 10k and 50k "
        "requests on django-gunicorn",
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--users", type=int, default=64, help="concurrent clients, each its own user")
    parser.add_argument("--phase", type=int, default=250, help="requests per phase")
    parser.add_argument("--pairs", type=int, help="timed on/off phase pairs per model (default 4; --full 40)")
    parser.add_argument(
        "--windows",
        type=int,
        help="side-by-side windows per model: both servers loaded at once, for a second estimate "
        "of the ratio (default 0)",
    )
    parser.add_argument("--window-seconds", type=float, default=4.0, help="seconds per side-by-side window")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests per server first")
    parser.add_argument("--memory-at", type=_ints, help="RSS after these many requests (--full: 10000,50000)")
    parser.add_argument("--memory-models", help="read RSS on these (default: all; --full: django-gunicorn)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn gthread threads")
    parser.add_argument(
        "--provider-delay", type=float, default=0.0, help="seconds before the provider answers each call"
    )
    parser.add_argument("--plans", help="only these plans, comma-separated (for diagnosis)")
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop the run after this long")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio or memory target is missed")
    args = parser.parse_args(argv)

    options = Options(
        models=tuple(m for m in args.models.split(",") if m),
        users=args.users,
        phase=args.phase,
        pairs=args.pairs or (40 if args.full else 4),
        windows=args.windows or 0,
        window_seconds=args.window_seconds,
        warmup=args.warmup,
        memory_at=args.memory_at if args.memory_at is not None else ((10_000, 50_000) if args.full else ()),
        memory_models=tuple(args.memory_models.split(","))
        if args.memory_models
        else (("django-gunicorn",) if args.full else None),
        threads=args.threads,
        plans=tuple(args.plans.split(",")) if args.plans else None,
        provider_delay=args.provider_delay,
        max_seconds=args.max_seconds,
        log=lambda line: print(line, flush=True),
    )
    unknown = set(options.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models: {', '.join(sorted(unknown))}")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {options.users} users, phases of "
        f"{options.phase} requests, {options.pairs} on/off pairs, {options.windows} side-by-side "
        f"windows of {options.window_seconds:.0f}s, warm-up {options.warmup}, "
        f"RSS at {list(options.memory_at) or 'none'}; provider delay {options.provider_delay}s; ledger off",
        flush=True,
    )
    started = time.perf_counter()
    results = asyncio.run(run(options))
    print()
    print(report(results, options))
    print(f"\ntotal {time.perf_counter() - started:.0f}s")

    failed = [r.model for r in results if not r.passed]
    if failed:
        print(f"FAIL: mixed or missing attributions, or failed requests: {', '.join(failed)}")
        return 1
    missed = [
        r.model
        for r in results
        if r.ratio < RATIO_TARGET or (r.memory_growth is not None and r.memory_growth >= MEMORY_TARGET)
    ]
    if missed:
        targets = f"ratio >= {RATIO_TARGET}, memory growth < {MEMORY_TARGET:.0%}"
        print(f"targets missed ({targets}): {', '.join(missed)}")
        if args.check:
            return 1
    print("zero mismatches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
