"""Oversized values never break a call: what goes into the xProxy-* headers is cut to the documented
limits, so that a gateway that refuses big headers (431, as real ones do at 8 KB) lets the call
through, while the call's record keeps every value whole."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

import openai
import pytest

import payi_web
from payi_web import PayiHeaders as H
from payi_web import payi_headers, track_context
from payi_web.core.log import forget
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_LIBS
from tests.strict_gateway import StrictGateway, sent_properties

MARKER = "...[truncated]"
MAX_VALUE, MAX_TOTAL = 4096, 6144  # as documented in the README
TRUNCATED = "payi_web.truncated"
LIBS = pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)

USER_ID = "u" * 70_000
ACCOUNT = "Müller GmbH " * 1000
PROPERTIES = {f"key-{i:04}": f"value number {i}" for i in range(1000)}  # a 29 KB header whole


def gateway_client(lib: Any, gateway: StrictGateway) -> openai.OpenAI:
    payi_web.configure(api_key="payi-key", header_hosts=[gateway.url])
    client = openai.OpenAI(
        api_key="sk", base_url=gateway.url + "/v1", http_client=lib.Client(), max_retries=0
    )
    return payi_web.instrument(client)


def context_values(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in headers.items() if k.lower().startswith("xproxy-") and k.lower() != "xproxy-api-key"
    }


def check_limits(headers: dict[str, str]) -> None:
    values = context_values(headers)
    assert all(len(value) <= MAX_VALUE for value in values.values()), {k: len(v) for k, v in values.items()}
    assert sum(map(len, values.values())) <= MAX_TOTAL


def check_cut_text(sent: str, original: str) -> None:
    """Cut at a character, never inside a %XX sequence: what is left decodes to a prefix."""
    assert sent.endswith(MARKER)
    assert original.startswith(unquote(sent.removesuffix(MARKER), errors="strict"))
    assert len(sent) > 1000  # cut to a fair share, not dropped


def check_cut_properties(sent: dict[str, Any], original: dict[str, str]) -> None:
    kept = dict(sent)
    left_out = int(kept.pop(TRUNCATED))
    assert list(kept.items()) == list(original.items())[: len(kept)]
    assert left_out == len(original) - len(kept) and len(kept) > 20


@LIBS
def test_oversized_values_go_through_a_gateway_that_refuses_big_headers(
    lib: Any, gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = gateway_client(lib, gateway)
    with track_context(
        user_id=USER_ID,
        account_name=ACCOUNT,
        use_case_name="chat",
        limit_ids=["cap"],
        request_properties=PROPERTIES,
        use_case_properties={"notes": "n" * 10_000},
    ):
        reply = client.chat.completions.create(**CHAT)
    assert reply.choices[0].message.content
    assert gateway.refused == []
    [sent] = provider.received
    check_limits(sent.headers)
    assert sent.headers["xproxy-usecase-name"] == "chat" and sent.headers["xproxy-limit-ids"] == "cap"
    check_cut_text(sent.headers["xproxy-user-id"], USER_ID)
    check_cut_text(sent.headers["xproxy-account-name"], ACCOUNT)
    check_cut_properties(sent_properties(sent.headers["xproxy-request-properties"]), PROPERTIES)
    notes = sent_properties(sent.headers["xproxy-usecase-properties"])
    assert notes[TRUNCATED] == "0" and notes["notes"].endswith(MARKER)
    [call] = payi_calls
    assert call.status == 200
    assert call.context.user_id == USER_ID and call.context.account_name == ACCOUNT
    assert call.context.request_properties == PROPERTIES
    assert {k.lower(): v for k, v in call.headers.items()} == context_values(sent.headers)


@LIBS
def test_1000_properties_alone_go_through(
    lib: Any, gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = gateway_client(lib, gateway)
    with track_context(user_id="42", request_properties=PROPERTIES):
        client.chat.completions.create(**CHAT)
    [sent] = provider.received
    assert sent.headers["xproxy-user-id"] == "42"
    value = sent.headers["xproxy-request-properties"]
    assert len(value) <= MAX_VALUE
    check_cut_properties(sent_properties(value), PROPERTIES)


@LIBS
def test_oversized_explicit_headers_are_cut_too(
    lib: Any, gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = gateway_client(lib, gateway)
    explicit = {"xProxy-User-ID": "x" * 70_000, "xproxy-request-properties": json.dumps(PROPERTIES)}
    with track_context(account_name=ACCOUNT, use_case_properties={"notes": "n" * 5000}):
        client.chat.completions.create(**CHAT, extra_headers=explicit)
    assert gateway.refused == []
    [sent] = provider.received
    check_limits(sent.headers)
    check_cut_text(sent.headers["xproxy-user-id"], "x" * 70_000)
    check_cut_text(sent.headers["xproxy-account-name"], ACCOUNT)
    check_cut_properties(sent_properties(sent.headers["xproxy-request-properties"]), PROPERTIES)


def test_within_the_limits_nothing_is_cut() -> None:
    whole = "w" * MAX_VALUE
    with track_context(user_id=whole, account_name="a" * (MAX_TOTAL - MAX_VALUE)):
        headers = payi_headers()
    assert headers[H.USER_ID] == whole and sum(map(len, headers.values())) == MAX_TOTAL
    with track_context(user_id=whole + "w"):
        headers = payi_headers()
    assert headers[H.USER_ID] == "w" * (MAX_VALUE - len(MARKER)) + MARKER


def test_the_longest_values_are_cut_first_and_short_ones_never() -> None:
    with track_context(user_id="u" * 4000, account_name="a" * 4000, use_case_name="chat", limit_ids=["cap"]):
        headers = payi_headers()
    check_limits(headers)
    assert headers[H.USE_CASE_NAME] == "chat" and headers[H.LIMIT_IDS] == "cap"
    assert len(headers[H.USER_ID]) == len(headers[H.ACCOUNT_NAME])  # an equal share each
    assert sum(map(len, headers.values())) > MAX_TOTAL - 10  # and no more cut than needed


@pytest.mark.parametrize("proxy", [True, False])
def test_cut_properties_stay_valid_json_in_both_modes(proxy: bool) -> None:
    properties = {"emoji": "😀" * 3000, "later": "v"}
    with track_context(request_properties=properties):
        value = payi_headers(proxy=proxy)[H.REQUEST_PROPERTIES]
    assert len(value) <= MAX_VALUE
    sent = sent_properties(value) if proxy else json.loads(value)
    assert sent[TRUNCATED] == "1"  # "later" left out
    emoji = sent["emoji"]
    assert emoji.endswith(MARKER) and set(emoji.removesuffix(MARKER)) == {"😀"}  # no half character


def test_a_cut_is_logged_once_per_header_without_the_value(caplog: pytest.LogCaptureFixture) -> None:
    forget(f"header-cut:{H.USER_ID}")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        for letter in "abc":
            with track_context(user_id=f"secret-{letter}" * 1000):
                payi_headers()
    warnings = [r for r in caplog.records if H.USER_ID in r.getMessage()]
    assert len(warnings) == 1
    assert "4096" in warnings[0].getMessage() and "6144" in warnings[0].getMessage()
    assert "secret" not in caplog.text
