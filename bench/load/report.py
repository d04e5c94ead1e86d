"""The harness's figures as a Markdown table, and what went wrong if anything did."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.load.harness import ModelResult, Options


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _count(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n else str(n)


def report(results: list[ModelResult], options: Options) -> str:
    """The figures as a Markdown table, and what went wrong if anything did."""
    points = " / ".join(_count(p) for p in sorted(options.memory_at)) or "-"
    head = (
        "| server model | requests | calls | mismatches | req/s on | req/s off | ratio on/off | "
        "side by side | p50 on / off (ms) | p99 on / off (ms) | server CPU on / off (ms/request) | "
        f"RSS after {points} (MiB) | growth |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        requests = r.on.requests + r.off.requests
        calls = r.on.calls + r.off.calls
        rss = " / ".join(f"{mib(r.rss[p])}" for p in sorted(r.rss)) or "-"
        growth = "-" if r.memory_growth is None else f"{r.memory_growth * 100:+.1f}%"
        side = "-" if r.side_by_side_ratio is None else f"{r.side_by_side_ratio:.3f}"
        lines.append(
            f"| {r.model} | {requests} | {calls} | {r.mismatches} | {r.on.throughput:.0f} | "
            f"{r.off.throughput:.0f} | {r.ratio:.3f} | {side} | {r.on.percentile(0.5) * 1000:.1f} / "
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
        interval = r.ratio_interval()
        if interval is not None:
            low, high = interval
            out.append(f"  ratio {r.ratio:.3f}, 95% bootstrap interval over the pairs {low:.3f}-{high:.3f}")
        calm = r.calm_pairs()
        if r.pair_ratios:
            calm_ratio = "-" if r.calm_ratio is None else f"{r.calm_ratio:.3f}"
            stolen = statistics.mean(r.on.phase_steal + r.off.phase_steal)
            out.append(
                f"  steal: {stolen:.0%} of the machine on average over the timed phases; "
                f"{len(calm)} of {len(r.pair_ratios)} pairs calm (<= 5% in both phases), "
                f"ratio over them {calm_ratio}"
            )
        if r.windows:
            each = ", ".join(f"{on / off:.2f}" for on, off in r.windows if off)
            out.append(f"  side by side, ratio of each {options.window_seconds:.0f}s window [{each}]")
        for example in r.examples:
            out.append(f"  ! {example}")
        for line in r.log_issues[:10]:
            out.append(f"  log: {line}")
    return "\n".join(out)
