"""Redirects: the host decision holds for every request actually sent, not only the first.

The openai and anthropic SDKs follow redirects. A Pay-i-bound request (the proxy, or a header
host) answered with a redirect to another host must reach that host with neither the Pay-i API
key nor any `xProxy-*` header, whatever the status, the HTTP library, or sync/async.
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

import payi_web
from payi_web import track_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_LIBS

ELSEWHERE = "https://elsewhere.example"
GATEWAY = "http://gateway.internal:8080/gw"


class Redirecting:
    """Answers every request to `origin` with `status` to the same path on ELSEWHERE, and serves the
    redirected request with the fake provider; keeps every request it was sent."""

    def __init__(self, origin: str, status: int, target: str = ELSEWHERE) -> None:
        self.origin = origin
        self.status = status
        self.target = target
        self.provider = FakeProvider()
        self.sent: list[tuple[str, dict[str, str]]] = []

    def _answer(self, lib: Any, request: Any, body: bytes) -> Any:
        url = str(request.url)
        self.sent.append((url, {k.lower(): v for k, v in request.headers.items()}))
        if url.startswith(self.origin) and not url.startswith(self.target):
            return lib.Response(self.status, headers={"location": self.target + request.url.path})
        reply = self.provider.reply(request.method, request.url.path, dict(request.headers), body)
        return lib.Response(reply.status, headers=reply.headers, content=b"".join(reply.chunks))

    def client(self, lib: Any, base_url: str) -> openai.OpenAI:
        def handle(request: Any) -> Any:
            return self._answer(lib, request, request.read())

        # follow_redirects as the SDKs' own default clients set it
        http = lib.Client(transport=lib.MockTransport(handle), follow_redirects=True)
        return openai.OpenAI(api_key="sk-test", base_url=base_url, http_client=http, max_retries=0)

    def async_client(self, lib: Any, base_url: str) -> openai.AsyncOpenAI:
        async def handle(request: Any) -> Any:
            return self._answer(lib, request, await request.aread())

        http = lib.AsyncClient(transport=lib.MockTransport(handle), follow_redirects=True)
        return openai.AsyncOpenAI(api_key="sk-test", base_url=base_url, http_client=http, max_retries=0)

    def pay_i_headers_sent_to(self, prefix: str) -> list[dict[str, str]]:
        return [
            {k: v for k, v in headers.items() if k.startswith("xproxy-")}
            for url, headers in self.sent
            if url.startswith(prefix)
        ]


STATUSES = [301, 302, 303, 307, 308]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_redirect_from_the_pay_i_proxy_to_another_host_carries_no_key_and_no_attribution(
    lib: Any, status: int, payi_calls: CapturedCalls
) -> None:
    payi_web.configure(api_key="payi-secret-key", defaults={"limit_ids": ["cap"]})
    server = Redirecting("https://api.pay-i.com", status)
    client = payi_web.instrument(server.client(lib, payi_web.proxy_url("openai")))
    with track_context(user_id="alice", account_name="acme", use_case_name="summary"):
        client.chat.completions.create(**CHAT)
    [first] = server.pay_i_headers_sent_to("https://api.pay-i.com")
    assert first["xproxy-api-key"] == "payi-secret-key"
    assert first["xproxy-user-id"] == "alice"
    assert server.pay_i_headers_sent_to(ELSEWHERE) == [{}]
    [call] = payi_calls  # one logical call, recorded with the status the caller saw
    assert call.status == 200 and call.context.user_id == "alice"


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_redirect_from_a_header_host_to_another_host_carries_no_attribution(lib: Any, status: int) -> None:
    payi_web.configure(api_key="payi-secret-key", header_hosts=[GATEWAY], ledger=False)
    server = Redirecting(GATEWAY, status)
    client = payi_web.instrument(server.client(lib, GATEWAY + "/v1"))
    with track_context(user_id="bob", use_case_name="chat"):
        client.chat.completions.create(**CHAT)
    [first] = server.pay_i_headers_sent_to(GATEWAY)
    assert first["xproxy-user-id"] == "bob"
    assert server.pay_i_headers_sent_to(ELSEWHERE) == [{}]


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_redirect_within_pay_i_keeps_the_headers(lib: Any) -> None:
    payi_web.configure(api_key="payi-secret-key", ledger=False)
    server = Redirecting(
        "https://api.pay-i.com/api/v1/proxy/openai/v1", 307, target="https://api.pay-i.com/moved"
    )
    client = payi_web.instrument(server.client(lib, payi_web.proxy_url("openai")))
    with track_context(user_id="carol"):
        client.chat.completions.create(**CHAT)
    sent = server.pay_i_headers_sent_to("https://api.pay-i.com")
    assert len(sent) == 2
    assert all(h["xproxy-user-id"] == "carol" and h["xproxy-api-key"] == "payi-secret-key" for h in sent)


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_globally_instrumented_async_clients_of_many_users_leak_nothing_on_redirects(lib: Any) -> None:
    payi_web.configure(api_key="payi-secret-key", ledger=False)
    payi_web.instrument()
    server = Redirecting("https://api.pay-i.com", 302)
    client = server.async_client(lib, payi_web.proxy_url("openai"))

    async def one(user: str) -> None:
        with track_context(user_id=user):
            await client.chat.completions.create(**CHAT)

    async def main() -> None:
        await asyncio.gather(*(one(f"user-{i}") for i in range(8)))

    asyncio.run(main())
    first = server.pay_i_headers_sent_to("https://api.pay-i.com")
    assert sorted(h["xproxy-user-id"] for h in first) == sorted(f"user-{i}" for i in range(8))
    assert server.pay_i_headers_sent_to(ELSEWHERE) == [{}] * 8
