"""JSON bodies are read as JSON (whatever their key order), and what the caller reads is untouched."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

import payi_web
from payi_web import track_context
from payi_web.fake_provider import FakeProvider
from payi_web.testing import CapturedCalls
from tests.instrumented import CHAT, OPENAI_LIBS, proxy_openai

LIBS = [httpx2, httpx]
URL = "http://127.0.0.1:9/v1/chat/completions"


@pytest.fixture
def loads_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The sizes of the documents parsed by `json` (`json.loads` ends in `raw_decode`, and so do
    httpx, httpx2 and payi_web)."""
    sizes: list[int] = []
    real_raw_decode = json.JSONDecoder.raw_decode

    def counting_raw_decode(self: json.JSONDecoder, s: str, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(s))
        return real_raw_decode(self, s, *args, **kwargs)

    monkeypatch.setattr(json.JSONDecoder, "raw_decode", counting_raw_decode)
    yield sizes


def raw_client(provider: FakeProvider, lib: Any) -> Any:
    return payi_web.instrument(lib.Client(transport=provider.transport(lib)))


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_a_response_is_parsed_once_for_its_record_and_json_is_the_librarys_own(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls, loads_calls: list[int]
) -> None:
    json_method = lib.Response.json
    client = payi_web.instrument(proxy_openai(provider, lib=lib))
    with track_context(user_id="42"):
        reply = client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert call.units["text"].input == reply.usage.prompt_tokens  # type: ignore[union-attr]
    assert call.response_id == reply.id
    # The response body (the only one over 100 bytes here): once for the record, once by the
    # SDK's own response.json().
    assert len([size for size in loads_calls if size > 100]) == 2, loads_calls
    assert lib.Response.json is json_method  # instrument(client) changes no class


RECORDED_JSON = [
    # A tool call's "id" before the response's own: the response's id is the record's.
    b'{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"call_tool",'
    b'"type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],'
    b'"id":"chatcmpl-top","object":"chat.completion","created":1,"model":"gpt-4o",'
    b'"usage":{"prompt_tokens":5,"completion_tokens":2}}',
]


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_records_read_bodies_as_json_whatever_the_order_of_their_keys(
    lib: Any, payi_calls: CapturedCalls
) -> None:
    def handle(request: Any) -> Any:
        return lib.Response(200, headers={"content-type": "application/json"}, content=RECORDED_JSON[0])

    client = payi_web.instrument(lib.Client(transport=lib.MockTransport(handle)))
    request = b'{"metadata":{"model":"mine","id":"x"},"messages":[],"model":"gpt-4o"}'
    client.post(URL, content=request, headers={"content-type": "application/json"})
    [call] = payi_calls
    assert call.response_id == "chatcmpl-top"
    assert call.resource == "gpt-4o"  # the request's model, not its metadata's
    assert call.units["text"] == (5, 2)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_json_reads_stay_independent(provider: FakeProvider, lib: Any, payi_calls: CapturedCalls) -> None:
    response = raw_client(provider, lib).post(URL, json=CHAT)
    first = response.json()
    assert first["usage"]["prompt_tokens"] == payi_calls[0].units["text"].input
    first["usage"]["prompt_tokens"] = -1  # the caller's object: changing it changes nothing else
    second = response.json()
    assert second == json.loads(response.content) and second is not first
    assert payi_calls[0].units["text"].input == second["usage"]["prompt_tokens"]


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_json_with_arguments_parses_as_asked(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls
) -> None:
    response = raw_client(provider, lib).post(URL, json=CHAT)
    parsed = response.json(parse_int=str)
    assert parsed["usage"]["prompt_tokens"] == str(payi_calls[0].units["text"].input)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_a_response_never_read_is_recorded_and_pickles(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls
) -> None:
    response = raw_client(provider, lib).post(URL, json=CHAT)
    assert payi_calls[0].usage_known
    copy = pickle.loads(pickle.dumps(response))
    assert copy.json() == json.loads(response.content)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_error_bodies_and_other_clients_are_left_alone(provider: FakeProvider, lib: Any) -> None:
    raw_client(provider, lib)  # instruments one client: any other client's responses are untouched
    other = lib.Client(transport=lib.MockTransport(lambda request: lib.Response(200, json={"usage": 1})))
    assert other.get("http://127.0.0.1:9/anything").json() == {"usage": 1}
    failing = payi_web.instrument(
        lib.Client(
            transport=lib.MockTransport(lambda request: lib.Response(429, json={"error": "slow down"}))
        )
    )
    response = failing.post(URL, json=CHAT)
    assert response.json() == {"error": "slow down"}


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_instrument_and_uninstrument_leave_json_alone(lib: Any) -> None:
    original = lib.Response.json
    payi_web.instrument()
    assert lib.Response.json is original
    payi_web.uninstrument()
    assert lib.Response.json is original


BODIES = [
    b'{"id":"c1","usage":{"prompt_tokens":3,"completion_tokens":1}}',
    b'{"id":"c1","usage":{"prompt_tokens":3,"completion_tokens":1}}  \n',
    '{"id":"é","usage":{"prompt_tokens":3,"completion_tokens":1}}'.encode(),
    '{"id":"c1","usage":{"prompt_tokens":3}}'.encode("utf-16"),
    b'{"id":"\xed\xa0\x80"}',  # a lone surrogate: json decodes it with surrogatepass
    b'{"id":"c1"} trailing',
    b'{"id":"c1"}\xc2\xa0',
    b'{"id":',
    b'{"value":NaN}',
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_json_reads_exactly_as_json_loads(lib: Any, body: bytes, payi_calls: CapturedCalls) -> None:
    transport = lib.MockTransport(lambda request: lib.Response(200, content=body))
    response = payi_web.instrument(lib.Client(transport=transport)).post(URL, json=CHAT)
    try:
        expected: Any = json.loads(body)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            response.json()
    else:
        assert repr(response.json()) == repr(expected)
    assert len(payi_calls) == 1  # recorded whatever the body
