"""example_django end to end: demo users of both accounts drive every view; the ledger rows and
the headers the offline model received carry the right user, account, use case, step and properties.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import AsyncClient, Client

import payi_web
from examples_shared import genai
from payi_web.django import conf
from payi_web.fake_provider import FakeProvider
from tests.examples.helpers import ledger_rows, properties

pytestmark = pytest.mark.django_db

Login = Callable[..., Client]
OFFLINE_LABEL = "offline demo model"


def sent(model: FakeProvider) -> list[dict[str, str]]:
    """The Pay-i headers of each request the offline model received."""
    return [request.payi_headers() for request in model.received]


def flushed_rows(ledger: Path) -> list[dict[str, Any]]:
    assert payi_web.flush(5)
    return ledger_rows(ledger)


def test_the_demo_users_are_created_once_in_their_accounts(demo_users: None) -> None:
    from django.contrib.auth.models import User

    out = io.StringIO()
    call_command("create_demo_users", stdout=out)  # a second run: nothing new
    assert "Created" not in out.getvalue() and "alice / alice-demo" in out.getvalue()
    accounts = {u.username: u.profile.account.name for u in User.objects.select_related("profile__account")}
    assert accounts == {"alice": "acme", "bob": "acme", "carol": "globex"}


def test_the_project_passes_its_system_checks() -> None:
    call_command("check", fail_level="WARNING", stdout=io.StringIO())


def test_login_page_is_labelled_and_lists_the_demo_users(client: Client, login: Login) -> None:
    page = client.get("/login/").content.decode()
    assert OFFLINE_LABEL in page.lower()
    for username, password in (("alice", "alice-demo"), ("bob", "bob-demo"), ("carol", "carol-demo")):
        assert username in page and password in page
    assert client.post("/login/", {"username": "alice", "password": "nope"}).status_code == 200  # form again
    home = login("alice").get("/").content.decode()
    assert OFFLINE_LABEL in home.lower()
    assert re.search(r"user id</th><td>alice<", home) and re.search(r"account</th><td>acme<", home)


@pytest.mark.parametrize("path", ["/", "/summarize/", "/chat/", "/reply/", "/usage/"])
def test_every_page_needs_a_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_summarize_as_alice_of_acme(login: Login, offline_model: FakeProvider, ledger: Path) -> None:
    client = login("alice")
    form = client.get("/summarize/").content.decode()
    assert OFFLINE_LABEL in form.lower() and "Pay-i context" not in form  # no call yet
    page = client.post("/summarize/", {"document": "Revenue grew while costs fell."}).content.decode()
    assert "[offline demo model]" in page
    [headers] = sent(offline_model)
    assert headers["xproxy-usecase-name"] == "document_summary"
    assert headers["xproxy-user-id"] == "alice" and headers["xproxy-account-name"] == "acme"
    assert headers["xproxy-limit-ids"] == "demo-monthly-cap"
    # The page shows the call's context and the headers that went out.
    instance = headers["xproxy-usecase-id"]
    assert f"use case instance id</th><td>{instance}<" in page
    assert "<th>xProxy-User-ID</th><td>alice</td>" in page
    assert "<th>xProxy-Account-Name</th><td>acme</td>" in page
    [row] = flushed_rows(ledger)
    assert (row["user_id"], row["account_name"], row["use_case_name"], row["use_case_id"]) == (
        "alice",
        "acme",
        "document_summary",
        instance,
    )
    assert row["model"] == "gpt-4o-mini" and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["limit_ids"] == ["demo-monthly-cap"] and row["estimated_cost_usd"] > 0


def _chunks_of(response: Any) -> list[bytes]:
    return list(response.streaming_content)


def test_chat_streams_bobs_answer_under_wsgi(login: Login, offline_model: FakeProvider, ledger: Path) -> None:
    client = login("bob")
    assert "Pay-i context" not in client.get("/chat/").content.decode()
    response = client.get("/chat/", {"message": "What does Pay-i track?"})
    assert response.streaming and len(offline_model.received) == 1  # sent by the view, read as streamed
    chunks = _chunks_of(response)
    assert len(chunks) > 10  # the page head, each piece of the answer, the Pay-i context, the tail
    page = b"".join(chunks).decode()
    assert "[offline demo model]" in page and page.rstrip().endswith("</html>")
    assert "<th>xProxy-UseCase-Name</th><td>chat</td>" in page and "(streamed)" in page
    [headers] = sent(offline_model)
    assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == ("bob", "acme")
    [row] = flushed_rows(ledger)
    assert (row["user_id"], row["account_name"], row["use_case_name"], row["streamed"]) == (
        "bob",
        "acme",
        "chat",
        1,
    )
    assert row["output_tokens"] == 12  # the usage of a stream, known to its end


@pytest.mark.django_db(transaction=True)
async def test_chat_streams_carols_answer_under_asgi(
    login: Login, offline_model: FakeProvider, ledger: Path
) -> None:
    from asgiref.sync import sync_to_async

    session = await sync_to_async(login)("carol")
    client = AsyncClient()
    client.cookies = session.cookies
    response = await client.get("/chat/", {"message": "Stream it", "format": "text"})
    assert response.is_async  # under ASGI the body is an async iterator: it really streams
    chunks = [chunk async for chunk in response.streaming_content]
    text = b"".join(chunks).decode()
    assert text.startswith("[offline demo model]") and len(chunks) > 10
    assert "use_case_name: chat\n" in text and "account_name: globex\n" in text
    assert "  xProxy-User-ID: carol\n" in text
    [headers] = sent(offline_model)
    assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == ("carol", "globex")
    [row] = await sync_to_async(flushed_rows)(ledger)
    assert (row["user_id"], row["account_name"], row["use_case_name"], row["streamed"]) == (
        "carol",
        "globex",
        "chat",
        1,
    )


def test_support_reply_has_two_steps_with_their_properties(
    login: Login, offline_model: FakeProvider, ledger: Path
) -> None:
    client = login("carol")
    assert "Draft a support reply" in client.get("/reply/").content.decode()
    ticket = "Exports time out after thirty seconds"
    page = client.post("/reply/", {"ticket": ticket, "tone": "formal"}).content.decode()
    outline, draft = sent(offline_model)
    assert outline["xproxy-usecase-step"] == "outline" and draft["xproxy-usecase-step"] == "draft"
    assert properties(outline["xproxy-request-properties"]) == {"tone": "formal", "ticket_words": "6"}
    assert properties(draft["xproxy-request-properties"]) == {"tone": "formal"}
    for headers in (outline, draft):
        assert headers["xproxy-usecase-name"] == "support_reply"
        assert (headers["xproxy-user-id"], headers["xproxy-account-name"]) == ("carol", "globex")
    assert outline["xproxy-usecase-id"] == draft["xproxy-usecase-id"]  # one use case instance
    assert "GenAI call 1 of 2" in page and "GenAI call 2 of 2" in page
    assert "tone=formal, ticket_words=6" in page and "<th>use case step</th><td>draft</td>" in page
    rows = flushed_rows(ledger)
    assert [(r["use_case_name"], r["use_case_step"], r["request_properties"]) for r in rows] == [
        ("support_reply", "outline", {"tone": "formal", "ticket_words": "6"}),
        ("support_reply", "draft", {"tone": "formal"}),
    ]
    assert {(r["user_id"], r["account_name"]) for r in rows} == {("carol", "globex")}
    # Another request is another use case instance.
    client.post("/reply/", {"ticket": ticket})
    assert sent(offline_model)[2]["xproxy-usecase-id"] != outline["xproxy-usecase-id"]


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def test_curl_style_basic_auth_and_json(demo_users: None, offline_model: FakeProvider) -> None:
    client = Client(enforce_csrf_checks=True)
    assert (
        client.post("/summarize/", {"document": "x"}).status_code == 403
    )  # a session POST needs a CSRF token
    assert client.post("/summarize/?format=json", **_basic("bob", "wrong")).status_code == 401
    response = client.post(
        "/summarize/?format=json", {"document": "Short text."}, **_basic("bob", "bob-demo")
    )
    assert response.status_code == 200  # no CSRF token needed: no cookie is involved
    body = response.json()
    assert body["backend"] == OFFLINE_LABEL and body["summary"].startswith("[offline demo model]")
    [call] = body["payi_calls"]
    assert (call["user_id"], call["account_name"], call["use_case_name"]) == (
        "bob",
        "acme",
        "document_summary",
    )
    assert call["headers"]["xProxy-User-ID"] == "bob"
    reply = client.post("/reply/?format=json", {"tone": "brief"}, **_basic("alice", "alice-demo")).json()
    assert [c["use_case_step"] for c in reply["payi_calls"]] == ["outline", "draft"]


def test_every_logged_in_user_sees_the_usage_of_every_account(
    login: Login, offline_model: FakeProvider, ledger: Path
) -> None:
    login("alice").post("/summarize/", {"document": "One"})
    b"".join(login("carol").get("/chat/", {"message": "Two"}).streaming_content)
    assert payi_web.flush(5)
    page = login("bob").get("/usage/").content.decode()  # bob is not staff
    assert OFFLINE_LABEL in page and str(ledger) in page and "back to the demo" in page
    for value in ("acme", "globex", "alice", "carol", "document_summary", "chat"):
        assert f">{value}<" in page, value


def test_the_pay_i_key_goes_out_but_is_never_shown(
    login: Login, offline_model: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYI_API_KEY", "payi-secret-for-tests")
    monkeypatch.setenv("PAYI_BASE_URL", "http://127.0.0.1:9")  # were anything sent to Pay-i: not far
    conf.reload()
    client = login("alice")
    page = client.post("/summarize/", {"document": "Key test."}).content.decode()
    [request] = offline_model.received
    assert request.headers["xproxy-api-key"] == "payi-secret-for-tests"
    assert "<th>xProxy-api-key</th><td>(redacted)</td>" in page and "payi-secret" not in page
    body = client.post("/summarize/?format=json", {"document": "Key test."}).json()
    assert body["payi_calls"][0]["headers"]["xProxy-api-key"] == "(redacted)"
    assert "payi-secret" not in json.dumps(body)


def test_the_backend_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert genai.select_backend({}) == genai.OFFLINE
    assert genai.select_backend({"PAYI_API_KEY": "k"}) == genai.OFFLINE
    assert genai.select_backend({"OPENAI_API_KEY": "sk"}) == genai.OPENAI
    assert genai.select_backend({"OPENAI_API_KEY": "sk", "PAYI_API_KEY": "k"}) == genai.PAYI_PROXY
    assert genai.payi_settings(genai.OFFLINE) == {"HEADER_HOSTS": [genai.OFFLINE_MODEL_URL]}
    assert genai.payi_settings(genai.PAYI_PROXY) == {"PROXY": True}
    assert genai.payi_settings(genai.OPENAI) == {}
    # The client each backend gets (made, never used: no network).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for payi_key, base_url in (
        (None, "https://api.openai.com/v1/"),
        ("k", payi_web.proxy_url("openai") + "/"),
    ):
        if payi_key:
            monkeypatch.setenv("PAYI_API_KEY", payi_key)
        monkeypatch.setattr(genai, "_client", None)
        assert str(genai.client().base_url) == base_url


def test_this_process_cannot_reach_the_network() -> None:
    import socket

    with pytest.raises(socket.gaierror, match="never reach the network"):
        socket.getaddrinfo("api.pay-i.com", 443)
