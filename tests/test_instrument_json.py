"""A non-streaming JSON response is parsed once, for its record and for whoever reads `json()`."""

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
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def loads_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The sizes of the bodies `json.loads` parsed (httpx, httpx2 and payi_web all use it)."""
    sizes: list[int] = []
    real_loads = json.loads

    def counting_loads(s: Any, **kwargs: Any) -> Any:
        sizes.append(len(s))
        return real_loads(s, **kwargs)

    monkeypatch.setattr(json, "loads", counting_loads)
    yield sizes


def raw_client(provider: FakeProvider, lib: Any) -> Any:
    return payi_web.instrument(lib.Client(transport=provider.transport(lib)))


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_the_sdk_and_the_record_share_one_parse(
    provider: FakeProvider, lib: Any, payi_calls: CapturedCalls, loads_calls: list[int]
) -> None:
    client = payi_web.instrument(proxy_openai(provider, lib=lib))
    with track_context(user_id="42"):
        reply = client.chat.completions.create(**CHAT)
    [call] = payi_calls
    assert call.units["text"].input == reply.usage.prompt_tokens  # type: ignore[union-attr]
    assert call.response_id == reply.id
    # payi_web read the body for the record (with json's scanner, not json.loads); the SDK's
    # response.json() got that parse instead of parsing the body again.
    assert [size for size in loads_calls if size > 100] == [], loads_calls


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
    assert "_payi_web_json" not in vars(response)


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.__name__)
def test_uninstrument_restores_json(lib: Any) -> None:
    original = lib.Response.json
    payi_web.instrument()
    assert lib.Response.json is not original
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
