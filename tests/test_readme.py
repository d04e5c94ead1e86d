"""The README is the front door: every Python example in it runs, and the demo runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples_and_the_two_commands_near_the_top() -> None:
    top = README.read_text()[:1500]
    assert "make demo" in top
    assert "make test" in top
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})


def test_demo_runs_offline() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "payi_web", "demo"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "xProxy-UseCase-Name: document_summary" in result.stdout
    assert "carol -> user_id=carol account_name=globex" in result.stdout
