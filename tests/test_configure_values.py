"""Values that would break every call are settled at configuration or declaration time."""

from __future__ import annotations

from typing import Any

import pytest

import payi_web
from payi_web import track, track_context
from payi_web.fake_provider import FakeProvider
from tests.instrumented import CHAT, OPENAI_LIBS, proxy_openai


@pytest.mark.parametrize("lib", OPENAI_LIBS, ids=lambda lib: lib.__name__)
def test_an_api_key_read_with_a_trailing_newline_is_sent_without_it(
    lib: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYI_API_KEY", "payi-secret-key\n")
    payi_web.configure(defaults={"proxy": True}, ledger=False)
    provider = FakeProvider()
    client = payi_web.instrument(proxy_openai(provider, lib=lib))
    with track_context(user_id="alice"):
        client.chat.completions.create(**CHAT)
    assert provider.received[0].headers["xproxy-api-key"] == "payi-secret-key"


@pytest.mark.parametrize("key", ["payi\x00key", "clé-payi", "payi\nkey"])
def test_an_api_key_no_header_can_carry_is_refused_at_configure(key: str) -> None:
    with pytest.raises(ValueError, match="api_key"):
        payi_web.configure(api_key=key, defaults={"proxy": True})


def test_a_use_case_version_beyond_64_bits_is_refused_where_declared() -> None:
    with pytest.raises(ValueError, match="use_case_version must be from 0 to 2\\*\\*63 - 1"):
        track(use_case_name="x", use_case_version=2**63)
    with pytest.raises(ValueError, match="use_case_version"):
        track_context(use_case_name="x", use_case_version=10**5000)
    with track_context(use_case_name="x", use_case_version=2**63 - 1):
        assert payi_web.payi_headers()["xProxy-UseCase-Version"] == str(2**63 - 1)
