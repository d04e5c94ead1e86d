"""example_django: its end-to-end tests (in a process of their own), and `make demo`'s real server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .helpers import REPO, demo_server, offline_env, report

SUITE = Path(__file__).parent / "django_app"


def test_the_example_django_projects_own_tests_pass() -> None:
    """tests/examples/django_app/, run with the example's settings (see conftest.py for why apart)."""
    env = offline_env(DJANGO_SETTINGS_MODULE="example_django.settings", DEMO_STREAM_DELAY="0")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--confcutdir",
            str(SUITE),
            str(SUITE),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 10 and "skipped" not in output, output[-3000:]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


def test_make_demo_serves_the_example_on_a_real_asgi_server(tmp_path: Path) -> None:
    """`make demo`'s commands (from the Makefile) in a fresh directory: migrate, create the demo
    users, serve with uvicorn; then log in, summarize, chat, and read the report where it ran."""
    env = offline_env(
        PYTHONPATH=str(REPO),  # the repository root is the working directory of `make demo`
        EXAMPLE_DJANGO_DB=str(tmp_path / "db.sqlite3"),
        DEMO_STREAM_DELAY="0.02",
    )
    with demo_server("demo", tmp_path, env) as (url, output):
        assert "log in as alice / alice-demo  (account acme)" in output[1]
        with httpx.Client(base_url=url, timeout=20, trust_env=False) as http:
            login = http.get("/login/")
            assert login.status_code == 200 and "offline demo model" in login.text.lower()
            response = http.post(
                "/login/",
                data={
                    "username": "alice",
                    "password": "alice-demo",
                    "csrfmiddlewaretoken": _csrf(login.text),
                },
            )
            assert response.status_code == 302 and response.headers["location"] == "/"
            form = http.get("/summarize/")
            page = http.post(
                "/summarize/", data={"document": "Served for real.", "csrfmiddlewaretoken": _csrf(form.text)}
            )
            assert page.status_code == 200 and "[offline demo model]" in page.text
            assert "<th>xProxy-UseCase-Name</th><td>document_summary</td>" in page.text
            assert "<th>xProxy-Account-Name</th><td>acme</td>" in page.text
            # The chat's answer arrives piece by piece (ASGI: Django does not buffer it).
            arrivals = []
            with http.stream("GET", "/chat/", params={"message": "hello", "format": "text"}) as chat:
                for chunk in chat.iter_text():
                    arrivals.append((time.monotonic(), chunk))
            text = "".join(chunk for _, chunk in arrivals)
            assert text.startswith("[offline demo model]") and "user_id: alice\n" in text
            assert arrivals[-1][0] - arrivals[0][0] > 0.1, "the answer came in one piece"
            assert "Pay-i usage" in http.get("/usage/").text
    # Ctrl+C: the server wrote its ledger in the working directory, where the report looks.
    assert (tmp_path / "payi_ledger.sqlite3").exists()
    rows = {
        (g["account_name"], g["user_id"], g["use_case_name"]): g["calls"]
        for g in report(tmp_path, env)["groups"]
    }
    assert rows == {("acme", "alice", "document_summary"): 1, ("acme", "alice", "chat"): 1}
