"""The shared conformance scenarios again, this time on the wire: through an instrumented OpenAI client."""

from __future__ import annotations

from typing import Any

import pytest

import payi_web
from payi_web.fake_provider import FakeProvider
from tests.conformance import compare, run_scenario, scenarios
from tests.instrumented import CHAT, proxy_openai


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: s["name"])
def test_instrumented_openai_sends_pay_i_sdk_headers(scenario: dict[str, Any]) -> None:
    provider = FakeProvider()
    client = None

    def call(label: str, extra_headers: dict[str, str]) -> dict[str, str]:
        nonlocal client
        if client is None:
            client = payi_web.instrument(proxy_openai(provider))
        client.chat.completions.create(**CHAT, extra_headers=extra_headers)
        return provider.received[-1].payi_headers()

    compare(scenario, run_scenario(scenario, call))


def test_payi_calls_fixture_is_registered_as_a_pytest_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx, httpx2, openai, payi_web
        from payi_web.fake_provider import FakeProvider

        OPENAI_HTTP = httpx2 if int(openai.__version__.split(".")[0]) >= 3 else httpx

        def test_user_code(payi_calls):
            provider = FakeProvider()
            http = OPENAI_HTTP.Client(transport=provider.transport(OPENAI_HTTP))
            client = openai.OpenAI(api_key="x", base_url="http://llm.local/v1", http_client=http)
            payi_web.instrument(client)
            with payi_web.track_context(user_id="42"):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            assert payi_calls[0].context.user_id == "42"
            assert payi_calls[0].units["text"].output == 12
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
