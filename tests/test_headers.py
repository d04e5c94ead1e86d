"""payi_headers(): the exact headers, the caller's precedence and header-unsafe values."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

import payi_web
from payi_web import PayiHeaders as H
from payi_web import payi_headers, track_context


def b64json(value: str) -> object:
    return json.loads(base64.b64decode(value))


def test_every_field_as_its_header_proxy_and_plain() -> None:
    with track_context(
        use_case_name="summary",
        use_case_id="uc-1",
        use_case_version=0,
        use_case_step="draft",
        use_case_properties={"tier": "gold"},
        limit_ids=["b", "a"],
        user_id="42",
        account_name="acme",
        request_properties={"k": "v", "none": None},
        price_as_category="cat",
        price_as_resource="res",
        resource_scope="global",
        log_prompt_and_response=False,
    ):
        proxied = payi_headers()
        plain = payi_headers(proxy=False)
    assert proxied == {
        H.USE_CASE_NAME: "summary",
        H.USE_CASE_ID: "uc-1",
        H.USE_CASE_VERSION: "0",
        H.USE_CASE_STEP: "draft",
        H.USE_CASE_PROPERTIES: base64.b64encode(b'{"tier":"gold"}').decode(),
        H.LIMIT_IDS: "b,a",
        H.USER_ID: "42",
        H.ACCOUNT_NAME: "acme",
        H.REQUEST_PROPERTIES: base64.b64encode(b'{"k":"v","none":null}').decode(),
        H.PRICE_AS_CATEGORY: "cat",
        H.PRICE_AS_RESOURCE: "res",
        H.RESOURCE_SCOPE: "global",
        H.LOGGING_DISABLE: "True",
    }
    assert plain[H.REQUEST_PROPERTIES] == '{"k":"v","none":null}'
    assert plain[H.USE_CASE_PROPERTIES] == '{"tier":"gold"}'


@pytest.mark.parametrize(
    "properties",
    [
        {"note": 'quote " backslash \\ newline \n tab \t nul \x00'},
        {"naïve": "José", "emoji": "😀", "separator": "\u2028"},
        {"lone surrogate": "\ud800", "empty": "", "none": None},
    ],
)
def test_properties_travel_as_the_sdk_json_of_them_ascii_only(properties: dict[str, str | None]) -> None:
    expected = json.dumps(properties, separators=(",", ":"))  # Pay-i's SDK: compact, ASCII-only
    with track_context(request_properties=properties, use_case_name="u", use_case_properties=properties):
        proxied, plain = payi_headers(), payi_headers(proxy=False)
    for name in (H.REQUEST_PROPERTIES, H.USE_CASE_PROPERTIES):
        assert plain[name] == expected and plain[name].isascii()
        assert base64.b64decode(proxied[name]).decode() == expected
        assert b64json(proxied[name]) == properties


def test_no_context_no_headers_and_each_call_returns_a_fresh_dict() -> None:
    assert payi_headers() == {}
    with track_context(user_id="u"):
        first = payi_headers()
        first["xProxy-User-ID"] = "tampered"
        assert payi_headers() == {H.USER_ID: "u"}


def test_limit_id_order_is_deterministic_parent_first() -> None:
    with track_context(limit_ids=["z", "m"]), track_context(limit_ids=["a", "m", "b"]):
        assert payi_headers()[H.LIMIT_IDS] == "z,m,a,b"


def test_explicit_headers_win_whatever_their_spelling() -> None:
    with track_context(user_id="ctx-user", account_name="ctx-acct", limit_ids=["l1"]):
        headers = payi_headers({"XPROXY-USER-ID": "explicit", "xproxy-limit-ids": "mine", "X-Other": "kept"})
    assert headers == {
        "XPROXY-USER-ID": "explicit",
        "xproxy-limit-ids": "mine",
        "X-Other": "kept",
        H.ACCOUNT_NAME: "ctx-acct",
    }


def test_explicit_empty_value_removes_the_header() -> None:
    with track_context(user_id="ctx-user", account_name="acct"):
        assert payi_headers({"xProxy-User-ID": ""}) == {H.ACCOUNT_NAME: "acct"}
    # Also with no context at all (Pay-i's SDK would send the empty header there).
    assert payi_headers({"xProxy-User-ID": ""}) == {}


def test_explicit_use_case_name_suppresses_context_id_version_step() -> None:
    with track_context(
        use_case_name="ctx", use_case_version=3, use_case_step="s", use_case_properties={"p": "1"}
    ):
        named = payi_headers({"xProxy-UseCase-Name": "mine"})
        emptied = payi_headers(
            {"xProxy-UseCase-Name": "", "xProxy-UseCase-ID": "x", "xProxy-UseCase-Step": "y"}
        )
        own_id = payi_headers({"xProxy-UseCase-Name": "mine", "xProxy-UseCase-ID": "my-id"})
        only_step = payi_headers({"xProxy-UseCase-Step": "explicit-step"})
    props = base64.b64encode(b'{"p":"1"}').decode()
    assert named == {"xProxy-UseCase-Name": "mine", H.USE_CASE_PROPERTIES: props}
    assert emptied == {H.USE_CASE_PROPERTIES: props}
    assert own_id == {
        "xProxy-UseCase-Name": "mine",
        "xProxy-UseCase-ID": "my-id",
        H.USE_CASE_PROPERTIES: props,
    }
    # Explicit wins even where Pay-i's SDK lets the context overwrite it.
    assert only_step[H.USE_CASE_STEP] == "explicit-step"
    assert only_step[H.USE_CASE_NAME] == "ctx"
    assert only_step[H.USE_CASE_VERSION] == "3"


def test_explicit_properties_replace_and_are_base64_in_proxy_mode() -> None:
    with track_context(request_properties={"ctx": "1"}):
        proxied = payi_headers({"xProxy-Request-Properties": '{"mine":"2"}'})
        plain = payi_headers({"xProxy-Request-Properties": '{"mine":"2"}'}, proxy=False)
    assert b64json(proxied[H.REQUEST_PROPERTIES]) == {"mine": "2"}
    assert plain == {H.REQUEST_PROPERTIES: '{"mine":"2"}'}


def test_non_str_explicit_pay_i_header_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="xProxy-User-ID"):
        payi_headers({"xProxy-User-ID": 42})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("José", "Jos%C3%A9"),
        ("Müller GmbH", "M%C3%BCller GmbH"),
        ("evil\r\nX-Injected: 1", "evil%0D%0AX-Injected: 1"),
        ("tab\there", "tab%09here"),
        ("emoji 🙂", "emoji %F0%9F%99%82"),
    ],
)
def test_header_unsafe_values_are_percent_encoded(value: str, sent: str) -> None:
    with track_context(user_id=value, account_name=value, request_properties={"name": value}):
        headers = payi_headers()
        explicit = payi_headers({"xProxy-Account-Name": value}, proxy=False)
    assert headers[H.USER_ID] == sent
    assert headers[H.ACCOUNT_NAME] == sent
    assert b64json(headers[H.REQUEST_PROPERTIES]) == {"name": value}  # JSON carries it losslessly
    assert explicit["xProxy-Account-Name"] == sent
    # The real HTTP client accepts every one of them as a single header.
    request = httpx.Request("POST", "https://api.pay-i.com/x", headers={**headers, **explicit})
    assert request.headers[H.USER_ID] == sent
    assert "x-injected" not in request.headers


def test_header_unsafe_value_is_logged_once_per_header(caplog: pytest.LogCaptureFixture) -> None:
    from payi_web.core.log import forget

    forget(f"header-unsafe:{H.ACCOUNT_NAME}")
    with caplog.at_level(logging.WARNING, logger="payi_web"):
        for name in ("Åsa", "Örjan", "Ærø"):
            with track_context(account_name=name):
                payi_headers()
    warnings = [r for r in caplog.records if H.ACCOUNT_NAME in r.getMessage()]
    assert len(warnings) == 1
    assert "Åsa" not in caplog.text  # the value itself (possibly personal data) is not logged


def test_root_defaults_and_non_proxy_mode() -> None:
    payi_web.configure(defaults={"account_name": "acme", "request_properties": {"env": "prod"}})
    assert payi_headers(proxy=False) == {H.ACCOUNT_NAME: "acme", H.REQUEST_PROPERTIES: '{"env":"prod"}'}
