"""What arrives at Pay-i: the exact headers and body of each ingest POST, made through real clients."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import payi_web
from payi_web import CallRecord, track_context
from payi_web.core.records import Units
from payi_web.fake_provider import LABEL, FakeProvider
from payi_web.ingest import build_event, installed_sink, stats
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, anthropic_client, async_openai_client, openai_client

from .conftest import API_KEY
from .server import IngestServer, Received

OPENAI = "https://api.openai.com/v1"
ANTHROPIC = "https://api.anthropic.com"

CONTEXT: dict[str, Any] = {
    "user_id": "42",
    "account_name": "acme",
    "use_case_name": "summary",
    "use_case_version": 3,
    "use_case_step": "draft",
    "use_case_properties": {"tier": "gold"},
    "request_properties": {"route": "/chat", "region": None},
    "resource_scope": "global",
}


def delivered(server: IngestServer, count: int = 1) -> list[Received]:
    assert payi_web.flush(10), stats()
    received = server.received
    assert len(received) == count, received
    return received


def common_headers(call: CallRecord, *, logging_disabled: bool = False) -> dict[str, str]:
    headers = {
        "xproxy-api-key": API_KEY,
        "xproxy-limit-ids": "monthly,team",
        "xproxy-usecase-name": "summary",
        "xproxy-usecase-id": call.context.use_case_id or "",
        "xproxy-usecase-version": "3",
        "xproxy-usecase-step": "draft",
        "xproxy-user-id": "42",
        "xproxy-account-name": "acme",
        "xproxy-resource-scope": "global",
    }
    if logging_disabled:
        headers["xproxy-logging-disable"] = "True"
    return headers


def check_timestamp(body: dict[str, Any], call: CallRecord) -> None:
    sent = datetime.fromisoformat(body.pop("event_timestamp"))
    assert sent.utcoffset() == timedelta(0)
    assert sent == call.timestamp
    assert abs(datetime.now(timezone.utc) - sent) < timedelta(minutes=1)


def test_openai_chat_exact_headers_and_body(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    ingest(defaults={"limit_ids": ["monthly"]})
    client = payi_web.instrument(openai_client(provider, OPENAI))
    with track_context(**CONTEXT, limit_ids=["team"], log_prompt_and_response=False):
        reply = client.chat.completions.create(**CHAT)
    [call] = payi_calls
    [sent] = delivered(server)

    assert (sent.method, sent.path) == ("POST", "/api/v1/ingest")
    assert sent.payi_headers() == common_headers(call, logging_disabled=True)
    assert sent.headers["content-type"] == "application/json"
    assert ("xProxy-api-key", API_KEY) in sent.raw_headers  # Pay-i's spelling
    body = sent.json
    check_timestamp(body, call)
    assert reply.usage is not None
    assert body == {
        "category": "system.openai",
        "resource": "gpt-4o-mini",
        "units": {"text": {"input": reply.usage.prompt_tokens, "output": reply.usage.completion_tokens}},
        "end_to_end_latency_ms": round(call.latency_ms),
        "http_status_code": 200,
        "provider_uri": "https://api.openai.com/v1/chat/completions",
        "provider_response_id": reply.id,
        "properties": {"route": "/chat", "region": None},
        "use_case_properties": {"tier": "gold"},
    }
    # No prompt or response text leaves the process, whatever the setting.
    for text in ("summarise this", LABEL, reply.choices[0].message.content or "?"):
        assert text not in sent.body.decode() and text not in json.dumps(sent.headers)


def test_openai_chat_streamed_reports_time_to_first_token(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    ingest(defaults={"limit_ids": ["monthly", "team"]})
    client = payi_web.instrument(openai_client(provider, OPENAI))
    with track_context(**CONTEXT):
        chunks = list(client.chat.completions.create(**CHAT, stream=True))
    [call] = payi_calls
    [sent] = delivered(server)
    assert sent.payi_headers() == common_headers(call)  # log_prompt_and_response not False: no header
    body = sent.json
    check_timestamp(body, call)
    assert call.time_to_first_token_ms is not None
    assert body == {
        "category": "system.openai",
        "resource": "gpt-4o-mini",
        "units": {"text": {"input": 3, "output": 12}},
        "end_to_end_latency_ms": round(call.latency_ms),
        "time_to_first_token_ms": round(call.time_to_first_token_ms),
        "http_status_code": 200,
        "provider_uri": "https://api.openai.com/v1/chat/completions",
        "provider_response_id": chunks[0].id,
        "properties": {"route": "/chat", "region": None},
        "use_case_properties": {"tier": "gold"},
    }
    assert all(chunk.choices for chunk in chunks)  # the usage-only chunk asked for is still hidden


def test_anthropic_messages_and_openai_embeddings(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    ingest(defaults={"limit_ids": ["monthly"]})
    claude = payi_web.instrument(anthropic_client(provider, ANTHROPIC))
    gpt = payi_web.instrument(openai_client(provider, OPENAI))
    with track_context(**CONTEXT, limit_ids=["team"]):
        message = claude.messages.create(
            model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": "hello claude"}]
        )
        payi_web.flush(10)  # one at a time: the order of arrival is then known
        embedding = gpt.embeddings.create(model="text-embedding-3-small", input="three little words")
    claude_call, embedding_call = payi_calls
    anthropic_sent, embedding_sent = delivered(server, 2)

    assert anthropic_sent.payi_headers() == common_headers(claude_call)
    body = anthropic_sent.json
    check_timestamp(body, claude_call)
    assert body == {
        "category": "system.anthropic",
        "resource": "claude-sonnet-4",
        "units": {"text": {"input": message.usage.input_tokens, "output": message.usage.output_tokens}},
        "end_to_end_latency_ms": round(claude_call.latency_ms),
        "http_status_code": 200,
        "provider_uri": "https://api.anthropic.com/v1/messages",
        "provider_response_id": message.id,
        "properties": {"route": "/chat", "region": None},
        "use_case_properties": {"tier": "gold"},
    }

    assert embedding_sent.payi_headers() == common_headers(embedding_call)
    body = embedding_sent.json
    check_timestamp(body, embedding_call)
    assert body["units"] == {"text": {"input": embedding.usage.prompt_tokens, "output": 0}}
    assert body["resource"] == "text-embedding-3-small"
    assert body["provider_uri"] == "https://api.openai.com/v1/embeddings"
    assert body["provider_response_id"].startswith("payi_")  # embeddings have no id: one is drawn


async def test_async_client_calls_are_ingested(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    ingest()
    client = payi_web.instrument(async_openai_client(provider, OPENAI))
    with track_context(user_id="async-user"):
        stream = await client.chat.completions.create(**CHAT, stream=True)
        async for _ in stream:
            pass
    [sent] = delivered(server)
    assert sent.headers["xproxy-user-id"] == "async-user"
    assert "time_to_first_token_ms" in sent.json


def test_global_instrumentation_leaves_ingest_requests_alone(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    ingest(base_url=server.url + "/")  # under the Pay-i base URL: an instrumented httpx would add headers
    payi_web.instrument()  # every httpx and httpx2 client, the ingest sender's included
    client = openai_client(provider, OPENAI)
    with track_context(user_id="7", request_properties={"k": "v"}):
        client.chat.completions.create(**CHAT)
    [sent] = delivered(server)
    assert len(payi_calls) == 1  # the ingest POST is not a tracked call...
    assert sent.payi_headers() == {"xproxy-api-key": API_KEY, "xproxy-user-id": "7"}  # ...nor re-headed


def test_explicit_headers_and_price_as_and_unknown_usage(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider
) -> None:
    ingest()
    client = payi_web.instrument(openai_client(provider, OPENAI))
    with track_context(
        user_id="ctx", use_case_name="uc", price_as_category="system.azureopenai", price_as_resource="gpt-4o"
    ):
        stream = client.chat.completions.create(
            **CHAT, stream=True, extra_headers={"xProxy-User-ID": "explicit", "xProxy-UseCase-Name": ""}
        )
        next(iter(stream))
        stream.close()  # abandoned early: the usage never arrived
    [sent] = delivered(server)
    assert sent.payi_headers() == {"xproxy-api-key": API_KEY, "xproxy-user-id": "explicit"}
    body = sent.json
    assert body["units"] == {}  # unknown, not zero
    assert (body["category"], body["resource"]) == ("system.azureopenai", "gpt-4o")  # priced as


def test_provider_failure_is_reported_with_its_status(
    ingest: Callable[..., Any], server: IngestServer
) -> None:
    ingest()
    failing = FakeProvider(fail_status=500)
    client = payi_web.instrument(openai_client(failing, OPENAI))
    with pytest.raises(Exception, match="500"):
        client.chat.completions.create(**CHAT)
    [sent] = delivered(server)
    body = sent.json
    assert (body["http_status_code"], body["units"]) == (500, {})


def test_calls_through_the_proxy_or_asking_for_it_are_not_ingested(
    ingest: Callable[..., Any], server: IngestServer, provider: FakeProvider, payi_calls: CapturedCalls
) -> None:
    ingest()
    proxied = payi_web.instrument(openai_client(provider, payi_web.proxy_url("openai")))
    direct = payi_web.instrument(openai_client(provider, OPENAI))
    proxied.chat.completions.create(**CHAT)  # Pay-i saw it already
    with track_context(proxy=True):
        direct.chat.completions.create(**CHAT)
    direct.chat.completions.create(**CHAT)
    assert len(payi_calls) == 3
    assert len(delivered(server)) == 1


def test_ingest_mode_is_on_with_a_key_and_without_proxy(server: IngestServer) -> None:
    assert payi_web.configure(base_url=server.url) and installed_sink() is None
    assert not stats().enabled
    assert payi_web.configure(api_key=API_KEY, defaults={"proxy": True}) and installed_sink() is None
    payi_web.configure(api_key=API_KEY, base_url=server.url, ledger=False)
    sink = installed_sink()
    assert sink is not None and stats().enabled
    assert API_KEY not in repr(sink)
    payi_web.configure(api_key=API_KEY, base_url=server.url, ledger=False, defaults={"user_id": "u"})
    assert installed_sink() is sink  # same key, URL and options: the running sink stays
    payi_web.configure(api_key="another-key", base_url=server.url, ledger=False)
    assert installed_sink() is not sink


def test_configure_fails_clearly_without_an_http_library(
    server: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = payi_web.configure(base_url=server.url)
    monkeypatch.setattr("payi_web.ingest.http._LIBRARIES", ("no_such_httpx",))
    with pytest.raises(ImportError, match="needs httpx or httpx2"):
        payi_web.configure(api_key=API_KEY)
    assert payi_web.current_config() is before  # nothing changed
    payi_web.configure(api_key=API_KEY, defaults={"proxy": True})  # the proxy needs no ingest


@pytest.mark.parametrize(
    ("imported", "used", "unused"), [((), "httpx2", "httpx"), (("httpx",), "httpx", "httpx2")]
)
def test_ingest_uses_the_http_library_the_app_has_loaded_else_httpx2(
    server: IngestServer, imported: tuple[str, ...], used: str, unused: str
) -> None:
    # A fresh process: ingest imports no second HTTP library beside the one the app's SDK brought
    # (httpx2 for openai >= 3 and anthropic >= 2, httpx for older ones), and delivers through it.
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {imported!r}:
            importlib.import_module(name)
        import payi_web
        from payi_web.fake_provider import FakeProvider

        payi_web.configure(api_key={API_KEY!r}, base_url={server.url!r}, ledger=False)
        assert {used!r} in sys.modules and {unused!r} not in sys.modules, sorted(sys.modules)
        lib = importlib.import_module({used!r})
        payi_web.instrument()
        client = lib.Client(transport=FakeProvider().transport(lib))
        with payi_web.track_context(user_id="u-7"):
            client.post({OPENAI!r} + "/chat/completions", json={CHAT!r})
        assert payi_web.flush(10)
        assert {unused!r} not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
    [sent] = server.received
    assert sent.path == "/api/v1/ingest"
    assert sent.headers["xproxy-user-id"] == "u-7"
    assert sent.json["resource"] == "gpt-4o-mini"


def test_event_values_are_strings_and_unknown_sides_left_out() -> None:
    from .test_delivery import make_record

    record = make_record(
        "r-1",
        units={"text": Units(5, None), "reasoning": Units(None, None)},
        headers={
            "xproxy-request-properties": '{"n":1,"ok":true,"s":"x","nested":{"a":[1]}}',
            "X-Other": "not sent",
            "xProxy-Request-Tags": "not sent either",
        },
        resource=None,
        status=None,
    )
    event = build_event(record)
    body = event.payload()
    assert body["properties"] == {"n": "1", "ok": "true", "s": "x", "nested": '{"a":[1]}'}
    assert body["units"] == {"text": {"input": 5}}
    assert body["resource"] == "system.unknown_model"
    assert "http_status_code" not in body
    assert dict(event.headers) == {}
    assert build_event(record).body == event.body  # built once per record in the sink; stable anyway
