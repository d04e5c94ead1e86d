"""Runs the shared conformance scenarios (tests/data/inheritance.json) and compares headers.

The scenarios record what Pay-i's own SDK sends. The comparison follows
tests/data/conformance-README.md, plus the one documented place where payi-web differs on
purpose: an explicit empty Pay-i header is removed, never sent empty.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import payi_web

DATA = Path(__file__).parent / "data" / "inheritance.json"
PROPERTY_HEADERS = {"xproxy-request-properties", "xproxy-usecase-properties"}


def scenarios() -> list[dict[str, Any]]:
    return json.loads(DATA.read_text())["scenarios"]


def run_scenario(
    scenario: dict[str, Any], call: Callable[[str, dict[str, str]], dict[str, str]]
) -> list[tuple[str, dict[str, str]]]:
    """Run the steps with our track/track_context; `call(label, extra_headers)` returns the headers sent."""
    payi_web.configure(defaults=scenario["config"])
    seen: list[tuple[str, dict[str, str]]] = []

    def run(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            if step["op"] == "call":
                seen.append((step["label"], call(step["label"], step.get("extra_headers", {}))))
            elif step["op"] == "context":
                with payi_web.track_context(**step["args"]):
                    run(step.get("steps", []))
            elif step["op"] == "track":

                @payi_web.track(**step["args"])
                def body(children: list[dict[str, Any]]) -> None:
                    run(children)

                body(step.get("steps", []))
            else:
                raise AssertionError(f"unknown op {step['op']!r}")

    run(scenario["steps"])
    return seen


def _normalise(headers: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in headers.items():
        low = name.lower()
        if not low.startswith("xproxy-") or low == "xproxy-api-key":
            continue
        if low == "xproxy-limit-ids":
            out[low] = set(value.split(","))
        elif low in PROPERTY_HEADERS:
            out[low] = json.loads(base64.b64decode(value))
        else:
            out[low] = value
    return out


def _expected(headers: dict[str, str]) -> dict[str, str]:
    # Deliberate difference: Pay-i's SDK sometimes sends an explicit empty header as is; we remove it.
    return {name: value for name, value in headers.items() if value != ""}


def compare(scenario: dict[str, Any], seen: list[tuple[str, dict[str, str]]]) -> None:
    expected = scenario["expected"]
    assert [label for label, _ in seen] == [e["label"] for e in expected]
    placeholders: dict[str, str] = {}
    for (label, got_raw), want_entry in zip(seen, expected, strict=True):
        got = _normalise(got_raw)
        want = _normalise(_expected(want_entry["headers"]))
        want_id = want.get("xproxy-usecase-id", "")
        if want_id.startswith("<uuid:"):
            got_id = got.get("xproxy-usecase-id", "")
            assert uuid.UUID(got_id).version == 4, (label, got_id)
            bound = placeholders.setdefault(want_id, got_id)
            assert bound == got_id, f"{label}: {want_id} was {bound}, now {got_id}"
            want["xproxy-usecase-id"] = got_id
        assert got == want, f"{scenario['name']} / {label}"
    ids = list(placeholders.values())
    assert len(ids) == len(set(ids)), "different placeholders must carry different ids"


def iter_ids() -> Iterator[str]:
    for scenario in scenarios():
        yield scenario["name"]
