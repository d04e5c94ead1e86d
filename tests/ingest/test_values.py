"""Ingest mode with odd and oversized values: every event is delivered, in a form that decodes back
or cut to the documented limits, whichever HTTP library sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest

import payi_web
from payi_web import track_context
from payi_web.fake_provider import FakeProvider
from payi_web.ingest import stats
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_LIBS, openai_client

from .server import IngestServer, Received

OPENAI = "https://api.openai.com/v1"
MARKER = "...[truncated]"
MAX_VALUE, MAX_TOTAL = 4096, 6144  # as documented in the README
GATEWAY_LIMIT = 8192


@pytest.fixture(params=[lib.__name__ for lib in OPENAI_LIBS])  # those the installed openai takes
def http_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The library both the app's client and the ingest sender use: as in an app that loaded only it."""
    monkeypatch.setattr("payi_web.ingest.http._LIBRARIES", (request.param,))
    return __import__(request.param)


def header_bytes(request: Received) -> int:
    return sum(len(name) + len(value) + 4 for name, value in request.raw_headers)


def refuse_big_headers(request: Received) -> int | None:
    return 431 if header_bytes(request) > GATEWAY_LIMIT else None  # as gateways in front of Pay-i do


def delivered_alone(server: IngestServer) -> Received:
    assert payi_web.flush(10), stats()
    assert stats().failed == 0, stats().last_error
    [sent] = server.received
    assert sent.status == 200
    return sent


def test_odd_values_are_delivered_and_decode_back(
    ingest: Callable[..., Any],
    server: IngestServer,
    provider: FakeProvider,
    http_library: Any,
    payi_calls: CapturedCalls,
) -> None:
    ingest(defaults={"limit_ids": ["monthly "]})
    client = payi_web.instrument(openai_client(provider, OPENAI, lib=http_library))
    with track_context(
        user_id="alice ",
        account_name="\tMüller GmbH",
        use_case_name=" chat",
        use_case_step="step\x00",
        limit_ids=["\tteam"],
        resource_scope="global ",
        request_properties={"form": " typed with spaces ", "ctrl": "a\x01b"},
        use_case_properties={"tier": "gold\t"},
    ):
        client.chat.completions.create(**CHAT)
    sent = delivered_alone(server)
    headers = sent.payi_headers()
    assert unquote(headers["xproxy-user-id"]) == "alice "
    assert unquote(headers["xproxy-account-name"]) == "\tMüller GmbH"
    assert unquote(headers["xproxy-usecase-name"]) == " chat"
    assert unquote(headers["xproxy-usecase-step"]) == "step\x00"
    assert unquote(headers["xproxy-limit-ids"]) == "monthly ,\tteam"
    assert unquote(headers["xproxy-resource-scope"]) == "global "
    # Properties travel in the JSON body, which carries any text as it is.
    assert sent.json["properties"] == {"form": " typed with spaces ", "ctrl": "a\x01b"}
    assert sent.json["use_case_properties"] == {"tier": "gold\t"}
    [call] = payi_calls
    assert call.context.user_id == "alice "


def test_oversized_values_are_delivered_cut_to_the_limits(
    ingest: Callable[..., Any],
    server: IngestServer,
    provider: FakeProvider,
    http_library: Any,
    payi_calls: CapturedCalls,
) -> None:
    server.decide = refuse_big_headers
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI, lib=http_library))
    user_id = "u" * 70_000
    properties = {f"key-{i:04}": f"value number {i}" for i in range(1000)}
    with track_context(
        user_id=user_id,
        account_name="acme",
        use_case_name="chat",
        request_properties=properties,
        use_case_properties={"summary": "é" * 20_000},
    ):
        client.chat.completions.create(**CHAT)
    sent = delivered_alone(server)
    headers = sent.payi_headers()
    assert header_bytes(sent) <= GATEWAY_LIMIT
    assert all(len(value) <= MAX_VALUE for value in headers.values())
    context_values = [v for k, v in headers.items() if k != "xproxy-api-key"]
    assert sum(map(len, context_values)) <= MAX_TOTAL
    assert headers["xproxy-account-name"] == "acme" and headers["xproxy-usecase-name"] == "chat"
    sent_user = headers["xproxy-user-id"]
    assert sent_user.endswith(MARKER) and user_id.startswith(sent_user.removesuffix(MARKER))
    assert len(sent_user) > 1000  # cut, not dropped

    body = sent.json
    kept = body["properties"]
    left_out = int(kept.pop("payi_web.truncated"))
    assert list(kept.items()) == list(properties.items())[: len(kept)]  # in order, whole
    assert len(kept) > 20 and left_out == len(properties) - len(kept)
    summary = body["use_case_properties"]["summary"]
    assert summary.endswith(MARKER) and set(summary.removesuffix(MARKER)) == {"é"}
    assert body["use_case_properties"]["payi_web.truncated"] == "0"

    [call] = payi_calls  # the local record keeps every value whole
    assert call.context.user_id == user_id
    assert call.context.request_properties == properties
    assert call.context.use_case_properties == {"summary": "é" * 20_000}


def test_a_deeply_nested_explicit_property_header_leaves_only_it_out(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, http_library: Any
) -> None:
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI, lib=http_library))
    # Valid JSON, deeper than json.loads goes (Python 3.13 parses 1500 levels; its C limit is 10000).
    nested = '{"a":' + "[" * 20_000 + "]" * 20_000 + "}"
    with track_context(user_id="42", use_case_name="chat", use_case_properties={"tier": "gold"}):
        client.chat.completions.create(**CHAT, extra_headers={"xProxy-Request-Properties": nested})
    sent = delivered_alone(server)
    assert sent.payi_headers()["xproxy-user-id"] == "42"
    assert "properties" not in sent.json
    assert sent.json["use_case_properties"] == {"tier": "gold"}
