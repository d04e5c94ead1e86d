"""Odd values (surrounding whitespace, control characters, non-ASCII) never break a call: they
travel percent-encoded, in a form that decodes back, through real clients and real HTTP/1.1."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

import anthropic
import h11
import httpx
import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import payi_web
from payi_web import PayiHeaders as H
from payi_web import payi_headers, track_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls
from tests.instrumented import ANTHROPIC_HTTP, CHAT, OPENAI_HTTP, OPENAI_LIBS
from tests.strict_gateway import StrictGateway, sent_properties

LIBS = pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)

# One odd value per text field: each is refused by h11 (or httpx) as it is.
ODD: dict[str, str] = {
    "use_case_name": " chat",
    "use_case_step": "draft\t",
    "user_id": "alice ",
    "account_name": "\tMüller GmbH ",
    "price_as_category": "cat\x00",
    "price_as_resource": "res\x7f",
    "resource_scope": " ",
}
HEADER_OF = {
    "use_case_name": H.USE_CASE_NAME,
    "use_case_step": H.USE_CASE_STEP,
    "user_id": H.USER_ID,
    "account_name": H.ACCOUNT_NAME,
    "price_as_category": H.PRICE_AS_CATEGORY,
    "price_as_resource": H.PRICE_AS_RESOURCE,
    "resource_scope": H.RESOURCE_SCOPE,
}
PROPS = {"form": " from a form field ", "tab": "\t", "percent": "50% "}


def openai_on(lib: Any, base_url: str) -> openai.OpenAI:
    # A real transport: the request goes through h11, whose checks are what failed the calls.
    return openai.OpenAI(api_key="sk-test", base_url=base_url, http_client=lib.Client(), max_retries=0)


def h11_accepts(name: str, value: str) -> bool:
    connection = h11.Connection(h11.CLIENT)
    try:
        connection.send(h11.Request(method="POST", target="/", headers=[("Host", "x"), (name, value)]))
    except h11.LocalProtocolError:
        return False
    return True


def check_odd_headers(sent: dict[str, str]) -> None:
    for field, value in ODD.items():
        header = sent[HEADER_OF[field].lower()]
        assert h11_accepts(HEADER_OF[field], header)
        assert unquote(header) == value, field
    assert unquote(sent["xproxy-limit-ids"]) == "cap ,team\t"
    assert sent_properties(sent["xproxy-request-properties"]) == PROPS
    assert sent_properties(sent["xproxy-usecase-properties"]) == {"tier": " gold"}


@LIBS
@pytest.mark.parametrize("route", ["header host", "Pay-i proxy"])
def test_odd_values_in_every_field_go_through_openai(
    lib: Any, route: str, gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    if route == "header host":
        payi_web.configure(api_key="payi-key", header_hosts=[gateway.url], defaults={"limit_ids": ["cap "]})
        base_url = gateway.url + "/v1"
    else:
        payi_web.configure(api_key="payi-key", base_url=gateway.url, defaults={"limit_ids": ["cap "]})
        base_url = payi_web.proxy_url("openai")
    client = payi_web.instrument(openai_on(lib, base_url))
    with track_context(
        **ODD, limit_ids=["team\t"], request_properties=PROPS, use_case_properties={"tier": " gold"}
    ):
        reply = client.chat.completions.create(**CHAT)
    assert reply.choices[0].message.content
    [sent] = provider.received
    check_odd_headers(sent.headers)
    assert sent.headers["xproxy-api-key"] == "payi-key"
    [call] = payi_calls
    assert call.status == 200 and call.proxied
    assert call.context.user_id == "alice " and call.context.account_name == "\tMüller GmbH "
    assert call.headers[H.USER_ID] == sent.headers["xproxy-user-id"]  # the record holds what was sent


def test_odd_values_go_through_anthropic_and_async_openai(
    gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    import asyncio

    payi_web.configure(api_key="payi-key", header_hosts=[gateway.url], defaults={"limit_ids": ["cap "]})
    claude = payi_web.instrument(
        anthropic.Anthropic(
            api_key="sk-ant", base_url=gateway.url, http_client=ANTHROPIC_HTTP.Client(), max_retries=0
        )
    )
    async_client = payi_web.instrument(
        openai.AsyncOpenAI(
            api_key="sk", base_url=gateway.url + "/v1", http_client=OPENAI_HTTP.AsyncClient(), max_retries=0
        )
    )
    fields: dict[str, Any] = {
        **ODD,
        "limit_ids": ["team\t"],
        "request_properties": PROPS,
        "use_case_properties": {"tier": " gold"},
    }

    async def call_async() -> None:
        with track_context(**fields):
            await async_client.chat.completions.create(**CHAT)

    with track_context(**fields):
        claude.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    asyncio.run(call_async())
    assert len(provider.received) == 2
    for sent in provider.received:
        check_odd_headers(sent.headers)
    assert [c.status for c in payi_calls] == [200, 200]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("alice ", "alice%20"),
        (" alice", "%20alice"),
        ("  two  ", "%20 two %20"),
        ("\tacme", "%09acme"),
        ("acme\t", "acme%09"),
        (" ", "%20"),
        ("50% off ", "50%25 off%20"),  # once encoded, `%` is too, so that it decodes back
        ("50% off", "50% off"),  # an ordinary value is sent as it is, `%` included
        ("a\x0bb\x0cc", "a%0Bb%0Cc"),
        ("nul\x00", "nul%00"),
        ("del\x7f", "del%7F"),
        ("José ", "Jos%C3%A9%20"),
    ],
)
def test_every_value_h11_refuses_is_encoded(value: str, sent: str) -> None:
    with track_context(user_id=value, use_case_name=value):
        proxied = payi_headers()
        plain = payi_headers(proxy=False)
        explicit = payi_headers({"xProxy-Account-Name": value})
    assert proxied[H.USER_ID] == plain[H.USER_ID] == proxied[H.USE_CASE_NAME] == sent
    assert explicit["xProxy-Account-Name"] == sent
    assert h11_accepts(H.USER_ID, sent)
    for lib in (httpx, httpx2):  # and both clients take it as one header
        assert lib.Request("POST", "http://x/", headers=proxied).headers[H.USER_ID] == sent


def sent_as_is(value: str) -> bool:
    return value.isascii() and value.isprintable() and value.strip(" ") == value


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_text_travels_and_decodes_back(value: str) -> None:
    with track_context(
        user_id=value, use_case_name="uc", use_case_id=value, limit_ids=[value.replace(",", ";")]
    ):
        headers = payi_headers()
    for name, original in (
        (H.USER_ID, value),
        (H.USE_CASE_ID, value),
        (H.LIMIT_IDS, value.replace(",", ";")),
    ):
        sent = headers[name]
        assert h11_accepts(name, sent), (name, sent)
        if sent_as_is(original):
            assert sent == original
        else:
            assert unquote(sent, errors="surrogatepass") == original


@LIBS
def test_concurrent_calls_with_odd_user_ids_never_mix(
    lib: Any, gateway: StrictGateway, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    payi_web.configure(api_key="payi-key", header_hosts=[gateway.url])
    client = payi_web.instrument(openai_on(lib, gateway.url + "/v1"))
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def user(index: int) -> str:
        return f" user {index}\t" if index % 2 else f"Åsa-{index} "

    def work(index: int) -> None:
        try:
            start.wait()
            for round_ in range(4):
                with track_context(user_id=user(index), request_properties={"who": f" {index} "}):
                    messages = [{"role": "user", "content": f"thread-{index} round-{round_}"}]
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(provider.received) == len(payi_calls) == 32
    for request in provider.received:
        index = int(request.body["messages"][0]["content"].split()[0].removeprefix("thread-"))
        assert unquote(request.headers["xproxy-user-id"]) == user(index)
        assert sent_properties(request.headers["xproxy-request-properties"]) == {"who": f" {index} "}
    for call in payi_calls:
        assert call.context.user_id is not None
        assert unquote(call.headers[H.USER_ID]) == call.context.user_id
