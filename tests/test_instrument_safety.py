"""Tracking never breaks the call: each failure point, with the real openai client."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import openai
import pytest

import payi_web
from payi_web import track_context
from payi_web.core.fields import Deferred
from payi_web.core.log import forget
from payi_web.core.records import CallRecord
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_HTTP, proxy_openai


class ExplodingSink:
    def record(self, call: CallRecord) -> None:
        raise RuntimeError("sink is broken")

    def flush(self, timeout: float | None = None) -> bool:
        raise RuntimeError("flush is broken")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "payi_web" and r.levelno == logging.WARNING]


def test_a_failing_sink_is_logged_once_and_the_calls_go_on(
    caplog: pytest.LogCaptureFixture, payi_calls: CapturedCalls
) -> None:
    forget("sink:ExplodingSink")
    sink = ExplodingSink()
    payi_web.add_sink(sink)
    try:
        client = payi_web.instrument(proxy_openai(FakeProvider()))
        with caplog.at_level(logging.WARNING, logger="payi_web"):
            replies = [client.chat.completions.create(**CHAT) for _ in range(3)]
            stream = list(client.chat.completions.create(**CHAT, stream=True))
        assert all(r.choices for r in replies) and stream
        assert len(payi_calls) == 4  # the other sinks still got every record
        failures = [r for r in _warnings(caplog) if "ExplodingSink" in r.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info is not None
        assert payi_web.flush(timeout=1) is False
    finally:
        payi_web.remove_sink(sink)


def test_a_failing_resolver_leaves_the_field_unset(
    caplog: pytest.LogCaptureFixture, payi_calls: CapturedCalls
) -> None:
    forget("resolver:account resolver")
    provider = FakeProvider()
    client = payi_web.instrument(proxy_openai(provider))

    def account() -> str:
        raise LookupError("no profile")

    resolver = Deferred(account, name="account resolver")
    with (
        caplog.at_level(logging.WARNING, logger="payi_web"),
        track_context(user_id="42", account_name=resolver),
    ):
        client.chat.completions.create(**CHAT)
        client.chat.completions.create(**CHAT)
    assert [r.headers.get("xproxy-account-name") for r in provider.received] == [None, None]
    assert provider.received[0].headers["xproxy-user-id"] == "42"
    assert payi_calls[0].context.account_name is None
    assert len([r for r in _warnings(caplog) if "account resolver" in r.getMessage()]) == 1


def test_deferred_values_resolve_once_on_first_call_only() -> None:
    resolved: list[int] = []

    def user() -> str:
        resolved.append(1)
        return "lazy-user"

    provider = FakeProvider()
    client = payi_web.instrument(proxy_openai(provider))
    with track_context(user_id=Deferred(user)):
        assert resolved == []  # entering the scope resolves nothing
        with track_context(use_case_name="inner"):
            client.chat.completions.create(**CHAT)
        client.chat.completions.create(**CHAT)
    assert resolved == [1]
    assert [r.headers["xproxy-user-id"] for r in provider.received] == ["lazy-user", "lazy-user"]


def test_failing_header_computation_sends_the_call_untracked(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget("begin")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("header computation failed")

    monkeypatch.setattr("payi_web.core.headers._build", broken)
    provider = FakeProvider()
    client = payi_web.instrument(proxy_openai(provider))
    with caplog.at_level(logging.WARNING, logger="payi_web"), track_context(user_id="42"):
        reply = client.chat.completions.create(**CHAT)
        client.chat.completions.create(**CHAT)
    assert reply.choices[0].message.content
    assert len(provider.received) == 2
    begin_failures = [r for r in _warnings(caplog) if "untracked" in r.getMessage()]
    assert len(begin_failures) == 1 and begin_failures[0].exc_info is not None


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [], '
        b'"usage": "lots"}',
        b'{"id": 5, "object": "chat.completion", "created": 0, "model": "m", "choices": [], '
        b'"usage": {"prompt_tokens": "7", "completion_tokens": -3, "prompt_tokens_details": [1]}}',
        b'["not", "an", "object"]',
    ],
)
def test_malformed_response_bodies_do_not_break_the_call(body: bytes, payi_calls: CapturedCalls) -> None:
    def handler(request: Any) -> Any:
        return OPENAI_HTTP.Response(200, content=body, headers={"content-type": "application/json"})

    http = OPENAI_HTTP.Client(transport=OPENAI_HTTP.MockTransport(handler))
    client = payi_web.instrument(
        openai.OpenAI(api_key="x", base_url=payi_web.proxy_url("openai"), http_client=http, max_retries=0)
    )
    # Whatever openai makes of it is openai's answer, not ours.
    with contextlib.suppress(openai.APIError):
        client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert call.status == 200


def test_malformed_stream_events_pass_through_untouched(payi_calls: CapturedCalls) -> None:
    raw = b'data: {"broken json\n\ndata: [1, 2]\n\n: comment\n\ndata: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'  # noqa: E501

    def handler(request: Any) -> Any:
        return OPENAI_HTTP.Response(
            200, content=iter([raw[:17], raw[17:]]), headers={"content-type": "text/event-stream"}
        )

    http = OPENAI_HTTP.Client(transport=OPENAI_HTTP.MockTransport(handler))
    client = payi_web.instrument(
        openai.OpenAI(api_key="x", base_url=payi_web.proxy_url("openai"), http_client=http, max_retries=0)
    )
    seen = []
    try:
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            seen.append(chunk)
    except Exception:
        pass
    assert payi_calls and payi_calls[0].streamed and not payi_calls[0].usage_known


def test_calls_from_many_threads_each_carry_their_own_user() -> None:
    provider = FakeProvider()
    url = provider.serve()
    try:
        payi_web.configure(header_hosts=[url])
        client = payi_web.instrument(openai.OpenAI(api_key="x", base_url=url + "/v1", max_retries=0))
        errors: list[BaseException] = []

        def request(i: int) -> None:
            try:
                with track_context(user_id=f"user-{i}", account_name=f"acct-{i % 3}"):
                    client.chat.completions.create(**CHAT)
                    for _ in client.chat.completions.create(**CHAT, stream=True):
                        pass
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=request, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(provider.received) == 48
        for received in provider.received:
            i = int(received.headers["xproxy-user-id"].removeprefix("user-"))
            assert received.headers["xproxy-account-name"] == f"acct-{i % 3}"
    finally:
        provider.close()


def test_a_resolver_that_reads_the_context_sees_its_field_unset() -> None:
    provider = FakeProvider()
    client = payi_web.instrument(proxy_openai(provider))
    seen: list[str | None] = []

    def user() -> str:
        seen.append(payi_web.get_context().user_id)  # re-enters the same Deferred
        return "resolved"

    with track_context(user_id=Deferred(user)):
        client.chat.completions.create(**CHAT)
    assert seen == [None]
    assert provider.received[0].headers["xproxy-user-id"] == "resolved"
