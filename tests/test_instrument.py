"""Real OpenAI/Anthropic/httpx clients, instrumented: the headers they send and the calls they record."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import textwrap
from typing import Any

import openai
import pytest

import payi_web
from payi_web import track_context
from payi_web.core.records import Units
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls, capture_calls
from tests.instrumented import (
    CHAT,
    OPENAI_HTTP,
    OPENAI_LIBS,
    anthropic_client,
    async_anthropic_client,
    async_openai_client,
    openai_client,
    proxy_openai,
)


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_chat_through_the_proxy_carries_headers_and_is_recorded(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls
) -> None:
    payi_web.configure(api_key="payi-secret-key", defaults={"limit_ids": ["cap"]})
    client = payi_web.instrument(proxy_openai(provider, lib=lib))
    with track_context(user_id="42", account_name="acme", use_case_name="summary"):
        reply = client.chat.completions.create(**CHAT)
    assert "offline demo model" in (reply.choices[0].message.content or "")
    sent = provider.received[0]
    assert sent.path == "/api/v1/proxy/openai/v1/chat/completions"
    assert sent.headers["xproxy-user-id"] == "42"
    assert sent.headers["xproxy-account-name"] == "acme"
    assert sent.headers["xproxy-usecase-name"] == "summary"
    assert sent.headers["xproxy-limit-ids"] == "cap"
    assert sent.headers["xproxy-api-key"] == "payi-secret-key"
    [call] = payi_calls
    assert call.category == "system.openai"
    assert call.resource == "gpt-4o-mini"
    assert call.status == 200 and not call.failed and not call.streamed and call.proxied
    assert call.context.user_id == "42"
    assert call.units == {
        "text": Units(input=reply.usage.prompt_tokens, output=reply.usage.completion_tokens)
    }  # type: ignore[union-attr]
    assert call.response_id == reply.id
    assert call.headers["xProxy-UseCase-ID"] == sent.headers["xproxy-usecase-id"]
    assert "xProxy-api-key" not in call.headers
    with pytest.raises(TypeError):  # records are immutable, their headers too
        call.headers["xProxy-User-ID"] = "someone else"  # type: ignore[index]
    assert call.url == "https://api.pay-i.com/api/v1/proxy/openai/v1/chat/completions"


def test_other_hosts_get_no_pay_i_headers_but_genai_calls_are_recorded(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    # proxy=True: this app uses Pay-i's proxy elsewhere, so nothing is ingested (see tests/ingest).
    payi_web.configure(api_key="payi-secret-key", defaults={"proxy": True})
    client = payi_web.instrument(openai_client(provider, "https://api.openai.com/v1"))
    internal = OPENAI_HTTP.Client(transport=provider.transport(OPENAI_HTTP))
    payi_web.instrument(internal)
    with track_context(user_id="42", account_name="acme"):
        client.chat.completions.create(**CHAT, extra_headers={"xProxy-User-ID": "explicit"})
        internal.post(
            "https://internal.example/api/things", json={"a": 1}, headers={"xProxy-Account-Name": "x"}
        )
    for request in provider.received:
        assert request.payi_headers() == {}, request.path
    [call] = payi_calls  # the internal API call is not a GenAI call
    assert not call.proxied
    assert call.context.user_id == "42"
    assert call.headers["xProxy-User-ID"] == "explicit"  # the attribution, kept for the record


def test_header_hosts_and_base_url_and_proxy_urls(provider: FakeProvider) -> None:
    payi_web.configure(base_url="https://payi.internal:8443/", header_hosts=["http://127.0.0.1:8080/gw"])
    assert payi_web.proxy_url("openai") == "https://payi.internal:8443/api/v1/proxy/openai/v1"
    assert payi_web.proxy_url("azure.openai") == "https://payi.internal:8443/api/v1/proxy/azure.openai"
    assert payi_web.proxy_url("anthropic") == "https://payi.internal:8443/api/v1/proxy/anthropic"
    assert payi_web.proxy_url("aws.bedrock") == "https://payi.internal:8443/api/v1/proxy/aws.bedrock"
    gateway = payi_web.instrument(openai_client(provider, "http://127.0.0.1:8080/gw/v1"))
    lookalike = payi_web.instrument(openai_client(provider, "http://127.0.0.1:8080/gwx/v1"))
    with track_context(user_id="7"):
        gateway.chat.completions.create(**CHAT)
        lookalike.chat.completions.create(**CHAT)
    assert provider.received[0].headers["xproxy-user-id"] == "7"
    assert "xproxy-api-key" not in provider.received[0].headers  # no key configured
    assert provider.received[1].payi_headers() == {}
    with pytest.raises(ValueError, match="base_url"):
        payi_web.configure(base_url="ftp://nope")
    with pytest.raises(ValueError, match="header_hosts"):
        payi_web.configure(header_hosts=["not a url"])
    with pytest.raises(ValueError, match="unknown provider"):
        payi_web.proxy_url("bard")


@pytest.mark.parametrize(
    ("configured", "called"),
    [
        ("https://API.Pay-i.com", "https://api.pay-i.com"),
        ("https://api.pay-i.com:443", "https://api.pay-i.com"),
        ("HTTPS://api.pay-i.com:443/", "https://API.PAY-I.COM"),
        ("http://Gateway.Internal:80/gw", "http://gateway.internal/gw"),
    ],
)
@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_urls_match_whatever_the_case_of_scheme_and_host_and_a_default_port(
    provider: FakeProvider, lib: Any, configured: str, called: str
) -> None:
    payi_web.configure(
        api_key="payi-secret-key", base_url=configured, header_hosts=[configured], ledger=False
    )
    client = payi_web.instrument(openai_client(provider, called + "/v1", lib=lib))
    with track_context(user_id="7"):
        client.chat.completions.create(**CHAT)
    [sent] = provider.received
    assert sent.headers["xproxy-user-id"] == "7"
    assert sent.headers["xproxy-api-key"] == "payi-secret-key"
    assert payi_web.proxy_url("openai").startswith(called.lower().replace(":443", "") + "/api/v1/proxy/")


def test_a_url_with_credentials_or_a_bad_port_is_refused() -> None:
    with pytest.raises(ValueError, match="base_url"):
        payi_web.configure(base_url="https://user:secret@api.pay-i.com")
    with pytest.raises(ValueError, match="header_hosts"):
        payi_web.configure(header_hosts=["https://gateway:99999"])


def test_configure_again_reroutes_urls_already_called(provider: FakeProvider) -> None:
    # Per-URL decisions are remembered for speed: a new configuration must not see stale ones.
    client = payi_web.instrument(openai_client(provider, "http://127.0.0.1:8080/gw/v1"))
    with track_context(user_id="7"):
        client.chat.completions.create(**CHAT)
        payi_web.configure(header_hosts=["http://127.0.0.1:8080/gw"], api_key="key-1")
        client.chat.completions.create(**CHAT)
        payi_web.configure(header_hosts=["http://127.0.0.1:8080/gw"], api_key="key-2")
        client.chat.completions.create(**CHAT)
        payi_web.configure()
        client.chat.completions.create(**CHAT)
    first, listed, rekeyed, unlisted = provider.received
    assert first.payi_headers() == {} and unlisted.payi_headers() == {}
    assert listed.headers["xproxy-user-id"] == rekeyed.headers["xproxy-user-id"] == "7"
    assert (listed.headers["xproxy-api-key"], rekeyed.headers["xproxy-api-key"]) == ("key-1", "key-2")


def test_without_any_sink_calls_get_their_headers_and_nothing_else(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pay-i's proxy (so nothing to ingest) and no local ledger: nothing records calls.
    payi_web.configure(ledger=False, api_key="k", defaults={"proxy": True})
    monkeypatch.setattr(payi_web.core.records, "_sinks", ())  # other tests' apps may have left theirs
    assert payi_web.core.records.sinks() == ()
    client = payi_web.instrument(proxy_openai(provider))
    with track_context(user_id="7"):
        client.chat.completions.create(**CHAT)
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
    plain, streamed = provider.received
    assert plain.headers["xproxy-user-id"] == streamed.headers["xproxy-user-id"] == "7"
    assert streamed.headers["xproxy-api-key"] == "k"
    assert "stream_options" not in streamed.body  # the stream is left as the caller asked for it
    assert chunks and all(chunk.usage is None for chunk in chunks)
    with capture_calls() as calls, track_context(user_id="8"):  # a sink again: calls are recorded
        client.chat.completions.create(**CHAT)
    assert [call.context.user_id for call in calls] == ["8"]


def test_environment_variables_configure_key_and_base_url(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYI_API_KEY", "env-key")
    monkeypatch.setenv("PAYI_BASE_URL", "https://eu.pay-i.example")
    config = payi_web.configure()
    assert config.base_url == "https://eu.pay-i.example"
    client = payi_web.instrument(proxy_openai(provider))
    client.chat.completions.create(**CHAT, extra_headers={"xProxy-api-key": "caller-key"})
    client.chat.completions.create(**CHAT)
    assert provider.received[0].headers["xproxy-api-key"] == "caller-key"  # the caller's wins
    assert provider.received[1].headers["xproxy-api-key"] == "env-key"


def test_api_key_never_in_reprs_or_logs(
    provider: FakeProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = payi_web.configure(api_key="sk-payi-VERY-SECRET")
    assert "VERY-SECRET" not in repr(config)
    assert "VERY-SECRET" not in str(config)
    client = payi_web.instrument(proxy_openai(provider))
    monkeypatch.setattr("payi_web.core.headers._build", _raise)
    with caplog.at_level(logging.DEBUG):
        client.chat.completions.create(**CHAT)
    assert "VERY-SECRET" not in caplog.text


def _raise(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("header computation failed")


def test_global_instrumentation_covers_clients_created_before(provider: FakeProvider) -> None:
    created_before = proxy_openai(provider)
    payi_web.instrument()
    payi_web.instrument()  # twice is harmless
    try:
        with capture_calls() as calls, track_context(user_id="early"):
            created_before.chat.completions.create(**CHAT)
            proxy_openai(provider).chat.completions.create(**CHAT)
        assert [c.context.user_id for c in calls] == ["early", "early"]
        assert len(calls) == 2  # recorded once each, not twice
        assert all(r.headers["xproxy-user-id"] == "early" for r in provider.received)
    finally:
        payi_web.uninstrument()
    with capture_calls() as calls, track_context(user_id="after"):
        created_before.chat.completions.create(**CHAT)
    assert calls == []
    assert "xproxy-user-id" not in provider.received[-1].headers


def test_instrument_returns_the_client_and_rejects_other_objects(provider: FakeProvider) -> None:
    client = proxy_openai(provider)
    assert payi_web.instrument(client) is client
    with pytest.raises(TypeError, match="neither an httpx"):
        payi_web.instrument(object())
    payi_web.uninstrument(client)
    with capture_calls() as calls:
        client.chat.completions.create(**CHAT)
    assert calls == []


def test_explicit_extra_headers_keep_core_precedence(provider: FakeProvider) -> None:
    client = payi_web.instrument(
        proxy_openai(provider, default_headers={"xProxy-Account-Name": "client-default"})
    )
    with track_context(
        user_id="ctx", account_name="ctx-acct", use_case_name="chat", request_properties={"a": "1"}
    ):
        client.chat.completions.create(
            **CHAT, extra_headers={"XPROXY-USER-ID": "", "xProxy-Request-Properties": '{"b":"2"}'}
        )
    headers = provider.received[0].headers
    assert "xproxy-user-id" not in headers  # explicit empty removes
    assert headers["xproxy-account-name"] == "client-default"  # default_headers are explicit too
    assert json.loads(base64.b64decode(headers["xproxy-request-properties"])) == {"b": "2"}
    assert headers["xproxy-usecase-name"] == "chat"


def test_non_ascii_values_go_out_percent_encoded(provider: FakeProvider) -> None:
    client = payi_web.instrument(proxy_openai(provider))
    with track_context(user_id="José", account_name="Müller GmbH\r\nX-Evil: 1"):
        reply = client.chat.completions.create(**CHAT)
    assert reply.choices
    headers = provider.received[0].headers
    assert headers["xproxy-user-id"] == "Jos%C3%A9"
    assert headers["xproxy-account-name"] == "M%C3%BCller GmbH%0D%0AX-Evil: 1"
    assert "x-evil" not in headers


# --- streams ---------------------------------------------------------------------------------


def _chunks(stream: Any) -> list[str]:
    return [json.dumps(chunk.model_dump(), sort_keys=True) for chunk in stream]


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_stream_asks_for_usage_and_hides_the_extra_chunk(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls
) -> None:
    plain = openai_client(FakeProvider(), payi_web.proxy_url("openai"), lib=lib)
    expected = _chunks(plain.chat.completions.create(**CHAT, stream=True))
    client = payi_web.instrument(proxy_openai(provider, lib=lib))
    with track_context(user_id="s1"):
        seen = _chunks(client.chat.completions.create(**CHAT, stream=True))
    assert seen == expected  # exactly what the caller sees without payi-web
    assert provider.received[0].body["stream_options"] == {"include_usage": True}
    [call] = payi_calls
    assert call.streamed and call.time_to_first_token_ms is not None
    assert call.units["text"].output == 12  # the fake provider answers 12 words
    assert call.latency_ms >= call.time_to_first_token_ms


def test_stream_that_asked_for_usage_itself_keeps_its_usage_chunk(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = payi_web.instrument(proxy_openai(provider))
    chunks = list(client.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert payi_calls[0].usage_known


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def _chunk(content: str | None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    return {
        "id": "c-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": choices,
        "usage": usage,
    }


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_stream_retried_asks_for_usage_once_per_attempt_and_counts_usage_null_chunks_right(
    lib: Any, payi_calls: CapturedCalls
) -> None:
    # Every chunk says "usage": null, as OpenAI's do once usage is asked for; the last one has it.
    bodies: list[bytes] = []

    def handler(request: Any) -> Any:
        bodies.append(request.read())
        assert request.headers["content-length"] == str(len(bodies[-1]))
        if len(bodies) == 1:
            return lib.Response(500, json={"error": {"message": "try again"}})
        usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        sse = _sse(_chunk("he"), _chunk("llo"), _chunk(None, usage))
        return lib.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    http = lib.Client(transport=lib.MockTransport(handler))
    client = openai.OpenAI(
        api_key="sk", base_url="https://api.openai.com/v1", http_client=http, max_retries=1
    )
    payi_web.instrument(client)
    chunks = list(client.chat.completions.create(**CHAT, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["he", "llo"]  # the usage chunk hidden
    assert [json.loads(b)["stream_options"] for b in bodies] == [{"include_usage": True}] * 2
    failed, call = payi_calls
    assert failed.failed and call.units == {"text": Units(5, 2)} and call.response_id == "c-1"


def test_stream_abandoned_early_records_unknown_usage(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = payi_web.instrument(proxy_openai(provider))
    stream = client.chat.completions.create(**CHAT, stream=True)
    next(iter(stream))
    stream.close()
    [call] = payi_calls
    assert call.units == {} and not call.usage_known
    assert call.input_tokens is None  # unknown, never zero
    assert not call.failed  # stopping early is the caller's choice, not a failed call


def test_chat_completions_stream_helper_and_embeddings(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = payi_web.instrument(proxy_openai(provider))
    # The helper left `beta` in openai 1.x's later releases.
    chat = client.chat if hasattr(client.chat.completions, "stream") else client.beta.chat
    with track_context(use_case_name="helpers"):
        with chat.completions.stream(**CHAT) as stream:
            text = "".join(e.delta for e in stream if e.type == "content.delta")
        client.embeddings.create(model="text-embedding-3-small", input="abc def")
    assert "offline demo model" in text
    assert [c.resource for c in payi_calls] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert all(c.usage_known and c.context.use_case_name == "helpers" for c in payi_calls)
    assert payi_calls[1].units == {"text": Units(3, 0)}  # round(2 words * 4/3)


@pytest.mark.skipif(not hasattr(openai.OpenAI, "responses"), reason="openai < 1.66 has no Responses API")
def test_responses_stream(provider: FakeProvider, payi_calls: CapturedCalls) -> None:
    client = payi_web.instrument(proxy_openai(provider))
    with track_context(use_case_name="helpers"):
        events = list(client.responses.create(model="gpt-4.1", input="hello there", stream=True))
    assert events[-1].type == "response.completed"
    [call] = payi_calls
    assert call.resource == "gpt-4.1"
    assert call.usage_known and call.context.use_case_name == "helpers"
    assert call.response_id == events[-1].response.id  # type: ignore[union-attr]


def test_anthropic_messages_plain_and_streamed_count_usage_once(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    client = payi_web.instrument(anthropic_client(provider, payi_web.proxy_url("anthropic")))
    request: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with track_context(account_name="acme"):
        message = client.messages.create(**request)
        with client.messages.stream(**request) as stream:
            final = stream.get_final_message()
    assert provider.received[0].path == "/api/v1/proxy/anthropic/v1/messages"
    assert provider.received[1].headers["xproxy-account-name"] == "acme"
    plain, streamed = payi_calls
    assert plain.category == streamed.category == "system.anthropic"
    assert plain.units == {"text": Units(message.usage.input_tokens, message.usage.output_tokens)}
    assert streamed.units == {"text": Units(final.usage.input_tokens, final.usage.output_tokens)}
    assert streamed.response_id == final.id


async def test_async_clients_plain_and_streamed(provider: FakeProvider, payi_calls: CapturedCalls) -> None:
    client = payi_web.instrument(async_openai_client(provider, payi_web.proxy_url("openai")))
    claude = payi_web.instrument(async_anthropic_client(provider, payi_web.proxy_url("anthropic")))
    async with track_context(user_id="async-user"):
        await client.chat.completions.create(**CHAT)
        stream = await client.chat.completions.create(**CHAT, stream=True)
        chunks = [chunk async for chunk in stream]
        await claude.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert all(chunk.choices for chunk in chunks)  # the added usage chunk is hidden
    assert [c.streamed for c in payi_calls] == [False, True, False]
    assert all(c.usage_known and c.context.user_id == "async-user" for c in payi_calls)
    assert all(r.headers["xproxy-user-id"] == "async-user" for r in provider.received)


async def test_async_stream_abandoned_early(provider: FakeProvider, payi_calls: CapturedCalls) -> None:
    client = payi_web.instrument(async_openai_client(provider, payi_web.proxy_url("openai")))
    stream = await client.chat.completions.create(**CHAT, stream=True)
    async for _ in stream:
        break
    await stream.close()
    [call] = payi_calls
    assert call.streamed and not call.usage_known and not call.failed


def test_failed_calls_are_recorded_as_failed(payi_calls: CapturedCalls) -> None:
    provider = FakeProvider(fail_status=500)
    client = payi_web.instrument(proxy_openai(provider))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert call.failed and call.status == 500 and not call.usage_known


def test_connection_errors_are_recorded_and_raised(payi_calls: CapturedCalls) -> None:
    def refuse(request: Any) -> Any:
        raise OPENAI_HTTP.ConnectError("refused", request=request)

    http = OPENAI_HTTP.Client(transport=OPENAI_HTTP.MockTransport(refuse))
    client = payi_web.instrument(
        openai.OpenAI(api_key="x", base_url=payi_web.proxy_url("openai"), http_client=http, max_retries=0)
    )
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert call.failed and call.status is None


def test_concurrent_async_tasks_each_carry_their_own_user(provider: FakeProvider) -> None:
    async def main() -> None:
        client = payi_web.instrument(async_openai_client(provider, payi_web.proxy_url("openai")))

        async def request(i: int) -> None:
            async with track_context(user_id=f"user-{i}", request_properties={"request_id": str(i)}):
                await asyncio.sleep(0)
                stream = await client.chat.completions.create(**CHAT, stream=True)
                async for _ in stream:
                    await asyncio.sleep(0)

        await asyncio.gather(*(request(i) for i in range(50)))

    with capture_calls() as calls:
        asyncio.run(main())
    assert len(calls) == 50
    for call in calls:
        assert call.context.user_id == f"user-{call.context.request_properties['request_id']}"  # type: ignore[index]
    for received in provider.received:
        props = json.loads(base64.b64decode(received.headers["xproxy-request-properties"]))
        assert received.headers["xproxy-user-id"] == f"user-{props['request_id']}"


def test_a_process_that_never_calls_configure_uses_the_environment(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import os, openai, payi_web
        from payi_web.fake_provider import FakeProvider

        provider = FakeProvider()
        os.environ["PAYI_BASE_URL"] = url = provider.serve()  # read at the first call, not at import
        client = payi_web.instrument(openai.OpenAI(api_key="x", base_url=url + "/api/v1/proxy/openai/v1"))
        with payi_web.track_context(user_id="env-user"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert provider.received[0].headers["xproxy-api-key"] == "key-from-env"
        assert provider.received[0].headers["xproxy-user-id"] == "env-user"
        print("ok")
        """
    )
    env = {**os.environ, "PAYI_API_KEY": "key-from-env", "PAYI_LEDGER": str(tmp_path / "ledger.sqlite3")}
    env.pop("PAYI_BASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_http_libraries_imported_after_instrument_are_instrumented_and_never_imported_for_it() -> None:
    # A fresh process: payi-web imports neither httpx nor httpx2 itself (an app on openai >= 3
    # never pays for legacy httpx), and each is patched when the app imports it, after instrument().
    script = textwrap.dedent(
        """
        import asyncio, sys
        import payi_web
        from payi_web.instrument import is_instrumented

        payi_web.configure(header_hosts=["http://provider.test"], ledger=False)
        payi_web.instrument()
        assert "httpx" not in sys.modules and "httpx2" not in sys.modules, "imported by payi-web"
        assert is_instrumented()

        import httpx, httpx2

        def handler(request):
            lib = httpx if isinstance(request, httpx.Request) else httpx2
            return lib.Response(200, json={"user": request.headers.get("xproxy-user-id")})

        async def both(lib, user):
            with payi_web.track_context(user_id=user):
                async with lib.AsyncClient(transport=lib.MockTransport(handler)) as client:
                    return (await client.get("http://provider.test/v1/models")).json()["user"]

        for lib in (httpx, httpx2):
            with payi_web.track_context(user_id="sync-" + lib.__name__):
                sync = lib.Client(transport=lib.MockTransport(handler)).get("http://provider.test/x")
            assert sync.json()["user"] == "sync-" + lib.__name__, (lib, sync.json())
            assert asyncio.run(both(lib, "async-" + lib.__name__)) == "async-" + lib.__name__
            assert lib.Client.send.__payi_web__
        payi_web.uninstrument()
        plain = httpx.Client(transport=httpx.MockTransport(handler))
        with payi_web.track_context(user_id="after"):
            assert plain.get("http://provider.test/x").json()["user"] is None
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYI")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_azure_openai_deployments_are_recorded_as_azure(
    provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    http = OPENAI_HTTP.Client(transport=provider.transport(OPENAI_HTTP))
    client = payi_web.instrument(
        openai.AzureOpenAI(
            api_key="azure-key",
            api_version="2024-10-21",
            azure_endpoint="https://my-resource.openai.azure.com",
            azure_deployment="prod-gpt4o",
            http_client=http,
            max_retries=0,
        )
    )
    with track_context(user_id="az"):
        client.chat.completions.create(**CHAT)
    assert provider.received[0].path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert provider.received[0].payi_headers() == {}  # not bound for Pay-i
    [call] = payi_calls
    assert call.category == "system.azureopenai"
    assert call.resource == "gpt-4o-mini"  # the request's model; the deployment when it has none
    assert call.context.user_id == "az" and call.usage_known
