"""Every shared conformance scenario, through payi_headers()."""

from __future__ import annotations

from typing import Any

import pytest

import payi_web
from tests.conformance import compare, run_scenario, scenarios


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s["name"])
def test_payi_headers_match_pay_i_sdk(scenario: dict[str, Any]) -> None:
    seen = run_scenario(scenario, lambda label, extra: payi_web.payi_headers(extra, proxy=True))
    compare(scenario, seen)


def test_all_scenarios_ran() -> None:
    assert len(scenarios()) == 50
