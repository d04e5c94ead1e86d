"""example_flask end to end: demo users of both accounts drive every view (Flask's test client), and
`make demo-flask`'s real server. The ledger rows and the headers the offline model received carry
the right user, account, use case, step and properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

import payi_web
from example_flask import create_app
from examples_shared import genai
from payi_web.fake_provider import FakeProvider

from .helpers import ONLINE_KEYS, REPO, demo_server, ledger_rows, offline_env, properties, report

OFFLINE_LABEL = "offline demo model"
PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo", "carol": "carol-demo"}
Login = Callable[[str], FlaskClient]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ONLINE_KEYS:
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "payi_ledger.sqlite3"
    monkeypatch.setenv("PAYI_LEDGER", str(path))
    return path


@pytest.fixture
def app(ledger: Path) -> Iterator[Flask]:
    app = create_app({"TESTING": True})
    yield app
    payi_web.flush(5)


@pytest.fixture
def offline_model() -> FakeProvider:
    model = genai.offline_model()
    model.received.clear()
    model.stream_delay = 0
    return model


@pytest.fixture
def login(app: Flask) -> Login:
    def log_in(username: str) -> FlaskClient:
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": PASSWORDS[username]})
        assert response.status_code == 302 and response.location == "/"
        return client

    return log_in


def sent(model: FakeProvider) -> list[dict[str, str]]:
    return [request.payi_headers() for request in model.received]


def flushed_rows(ledger: Path) -> list[dict[str, Any]]:
    assert payi_web.flush(5)
    return ledger_rows(ledger)


def test_login_page_is_labelled_and_lists_the_demo_users(app: Flask, login: Login) -> None:
    page = app.test_client().get("/login").text
    assert OFFLINE_LABEL in page.lower()
    for username, password in PASSWORDS.items():
        assert username in page and password in page
    wrong = app.test_client().post("/login", data={"username": "alice", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    home = login("carol").get("/").text
    assert OFFLINE_LABEL in home.lower()
    assert "user id</th><td>carol<" in home and "account</th><td>globex<" in home


@pytest.mark.parametrize("path", ["/", "/summarize", "/chat", "/reply", "/usage/"])
def test_every_page_needs_a_login(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302 and response.location.startswith("/login?next=")


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(app: Flask) -> None:
    client = app.test_client()
    form = {"username": "bob", "password": "bob-demo"}
    assert client.post("/login?next=/chat", data=form).location == "/chat"
    assert client.post("/login?next=//evil.example/", data=form).location == "/"


def test_summarize_as_alice_of_acme(login: Login, offline_model: FakeProvider, ledger: Path) -> None:
    client = login("alice")
    form = client.get("/summarize").text
    assert OFFLINE_LABEL in form.lower() and "Pay-i context" not in form
    page = client.post("/summarize", data={"document": "Revenue grew while costs fell."}).text
    assert "[offline demo model]" in page
    [headers] = sent(offline_model)
    assert headers["xproxy-usecase-name"] == "document_summary"
    assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == ("alice", "acme")
    assert headers["xproxy-limit-ids"] == "demo-monthly-cap"
    instance = headers["xproxy-usecase-id"]
    assert f"use case instance id</th><td>{instance}<" in page
    assert "<th>xProxy-User-ID</th><td>alice</td>" in page
    [row] = flushed_rows(ledger)
    assert (row["user_id"], row["account_name"], row["use_case_name"], row["use_case_id"]) == (
        "alice",
        "acme",
        "document_summary",
        instance,
    )
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["estimated_cost_usd"] > 0


@pytest.mark.parametrize(
    ("username", "account", "fmt"), [("bob", "acme", "html"), ("carol", "globex", "text")]
)
def test_chat_streams_the_answer_to_its_end(
    login: Login, offline_model: FakeProvider, ledger: Path, username: str, account: str, fmt: str
) -> None:
    client = login(username)
    assert "Pay-i context" not in client.get("/chat").text
    response = client.get(
        "/chat", query_string={"message": "What does Pay-i track?", "format": fmt}, buffered=False
    )
    assert response.is_streamed and len(offline_model.received) == 1  # sent by the view, read as streamed
    chunks = list(response.response)
    response.close()
    assert len(chunks) > 10  # each piece of the answer on its own
    body = b"".join(chunks).decode()
    if fmt == "html":
        assert "[offline demo model]" in body and body.rstrip().endswith("</html>")
        assert "<th>xProxy-UseCase-Name</th><td>chat</td>" in body and "(streamed)" in body
        assert f"<th>xProxy-Account-Name</th><td>{account}</td>" in body
    else:
        assert body.startswith("[offline demo model]")
        assert f"user_id: {username}\naccount_name: {account}\n" in body
    [headers] = sent(offline_model)
    assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == (username, account)
    assert headers["xproxy-usecase-name"] == "chat"
    [row] = flushed_rows(ledger)
    assert (row["user_id"], row["account_name"], row["use_case_name"], row["streamed"]) == (
        username,
        account,
        "chat",
        1,
    )
    assert row["output_tokens"] == 12


def test_support_reply_has_two_steps_with_their_properties(
    login: Login, offline_model: FakeProvider, ledger: Path
) -> None:
    client = login("carol")
    ticket = "Exports time out after thirty seconds"
    page = client.post("/reply", data={"ticket": ticket, "tone": "formal"}).text
    outline, draft = sent(offline_model)
    assert outline["xproxy-usecase-step"] == "outline" and draft["xproxy-usecase-step"] == "draft"
    assert properties(outline["xproxy-request-properties"]) == {"tone": "formal", "ticket_words": "6"}
    assert properties(draft["xproxy-request-properties"]) == {"tone": "formal"}
    for headers in (outline, draft):
        assert headers["xproxy-usecase-name"] == "support_reply"
        assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == ("carol", "globex")
    assert outline["xproxy-usecase-id"] == draft["xproxy-usecase-id"]
    assert "GenAI call 1 of 2" in page and "tone=formal, ticket_words=6" in page
    rows = flushed_rows(ledger)
    assert [(r["use_case_name"], r["use_case_step"], r["request_properties"]) for r in rows] == [
        ("support_reply", "outline", {"tone": "formal", "ticket_words": "6"}),
        ("support_reply", "draft", {"tone": "formal"}),
    ]
    assert {(r["user_id"], r["account_name"]) for r in rows} == {("carol", "globex")}


def test_curl_style_basic_auth_and_json(app: Flask, offline_model: FakeProvider) -> None:
    client = app.test_client()
    assert client.post("/summarize?format=json", auth=("bob", "wrong")).status_code == 401
    response = client.post("/summarize?format=json", data={"document": "Short."}, auth=("bob", "bob-demo"))
    body = response.get_json()
    assert body["backend"] == OFFLINE_LABEL and body["summary"].startswith("[offline demo model]")
    [call] = body["payi_calls"]
    assert (call["user_id"], call["account_name"], call["use_case_name"]) == (
        "bob",
        "acme",
        "document_summary",
    )
    assert call["headers"]["xProxy-Account-Name"] == "acme"
    reply = client.post("/reply?format=json", data={"tone": "brief"}, auth=("alice", "alice-demo")).get_json()
    assert [c["use_case_step"] for c in reply["payi_calls"]] == ["outline", "draft"]
    assert client.get("/").status_code == 302  # Basic credentials log in one request, no session


def test_every_logged_in_user_sees_the_usage_of_every_account(
    login: Login, offline_model: FakeProvider, ledger: Path
) -> None:
    login("alice").post("/summarize", data={"document": "One"})
    login("carol").get("/chat", query_string={"message": "Two"}).get_data()
    assert payi_web.flush(5)
    page = login("bob").get("/usage/").text
    assert OFFLINE_LABEL in page and str(ledger) in page
    for value in ("acme", "globex", "alice", "carol", "document_summary", "chat"):
        assert f">{value}<" in page, value


def test_the_pay_i_key_goes_out_but_is_never_shown(
    ledger: Path, offline_model: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYI_API_KEY", "payi-secret-for-tests")
    monkeypatch.setenv("PAYI_BASE_URL", "http://127.0.0.1:9")  # were anything sent to Pay-i: not far
    app = create_app({"TESTING": True})
    client = app.test_client()
    body = client.post(
        "/summarize?format=json", data={"document": "Key."}, auth=("alice", "alice-demo")
    ).get_json()
    [request] = offline_model.received
    assert request.headers["xproxy-api-key"] == "payi-secret-for-tests"
    assert body["payi_calls"][0]["headers"]["xProxy-api-key"] == "(redacted)"
    assert "payi-secret" not in json.dumps(body)
    assert len(flushed_rows(ledger)) == 1  # the ledger stays on with a Pay-i key


def test_the_backend_follows_the_environment(ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app().config["PAYI_HEADER_HOSTS"] == [genai.OFFLINE_MODEL_URL]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert create_app().config["DEMO_BACKEND"] == genai.OPENAI
    monkeypatch.setattr(genai, "_client", None)
    assert str(genai.client().base_url) == "https://api.openai.com/v1/"  # made, never used
    monkeypatch.setenv("PAYI_API_KEY", "payi-test")
    app = create_app()
    assert app.config["DEMO_BACKEND"] == genai.PAYI_PROXY and app.config["PAYI_PROXY"] is True
    monkeypatch.setattr(genai, "_client", None)
    assert str(genai.client().base_url) == payi_web.proxy_url("openai") + "/"
    assert "OpenAI through the Pay-i proxy" in app.test_client().get("/login").text


def test_make_demo_flask_serves_the_example(tmp_path: Path) -> None:
    """`make demo-flask`'s command (from the Makefile) in a fresh directory; log in, summarize, chat."""
    env = offline_env(PYTHONPATH=str(REPO), DEMO_STREAM_DELAY="0.02")
    with (
        demo_server("demo-flask", tmp_path, env) as (url, _),
        httpx.Client(base_url=url, timeout=20, trust_env=False) as http,
    ):
        assert "offline demo model" in http.get("/login").text.lower()
        response = http.post("/login", data={"username": "carol", "password": "carol-demo"})
        assert response.status_code == 302 and response.headers["location"] == "/"
        page = http.post("/summarize", data={"document": "Served for real."})
        assert page.status_code == 200 and "[offline demo model]" in page.text
        assert "<th>xProxy-Account-Name</th><td>globex</td>" in page.text
        arrivals = []
        with http.stream("GET", "/chat", params={"message": "hello", "format": "text"}) as chat:
            for chunk in chat.iter_text():
                arrivals.append((time.monotonic(), chunk))
        text = "".join(chunk for _, chunk in arrivals)
        assert text.startswith("[offline demo model]") and "user_id: carol\n" in text
        assert arrivals[-1][0] - arrivals[0][0] > 0.1, "the answer came in one piece"
        assert "Pay-i usage" in http.get("/usage/").text
    rows = {
        (g["account_name"], g["user_id"], g["use_case_name"]): g["calls"]
        for g in report(tmp_path, env)["groups"]
    }
    assert rows == {("globex", "carol", "document_summary"): 1, ("globex", "carol", "chat"): 1}
