"""`PAYI_*` config keys: validated at init_app with the shared settings model, errors naming the key."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import payi_web
from payi_web.core.config import current_config
from payi_web.flask import PayiTracking, SettingsError
from payi_web.instrument import is_instrumented
from tests.flask.conftest import make_app


async def async_resolver() -> str:
    return "x"


def needs_request(request: Any) -> str:  # Django style: wrong for Flask
    return "x"


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"PAYI_USRE_ID": "a.b:c"}, "PAYI_USRE_ID", "did you mean 'PAYI_USER_ID'"),
        ({"PAYI_INSTRUMENT": "yes"}, "PAYI_INSTRUMENT", "boolean"),
        ({"PAYI_USE_CASE_VERSION": "2"}, "PAYI_USE_CASE_VERSION", "integer"),
        ({"PAYI_LIMIT_IDS": "a,b"}, "PAYI_LIMIT_IDS", "list"),
        ({"PAYI_LIMIT_IDS": ["a,b"]}, "PAYI_LIMIT_IDS", "no comma"),
        ({"PAYI_EXCLUDE_PATHS": ["(unclosed"]}, "PAYI_EXCLUDE_PATHS", "bad regular expression"),
        ({"PAYI_HEADER_HOSTS": "https://llm.internal"}, "PAYI_HEADER_HOSTS", "not a str"),
        ({"PAYI_HEADER_HOSTS": ["llm.internal"]}, "PAYI_HEADER_HOSTS", r"http\(s\) URL"),
        ({"PAYI_BASE_URL": "ftp://pay-i.example"}, "PAYI_BASE_URL", r"http\(s\) URL"),
        ({"PAYI_USER_ID": "no_such_module_xyz:fn"}, "PAYI_USER_ID", "cannot import"),
        ({"PAYI_ACCOUNT_NAME": 42}, "PAYI_ACCOUNT_NAME", "callable or a dotted path"),
        ({"PAYI_USER_ID": async_resolver}, "PAYI_USER_ID", "async function"),
        ({"PAYI_CONTEXT": needs_request}, "PAYI_CONTEXT", "must take no arguments"),
    ],
)
def test_bad_keys_and_values_raise_at_init_app_naming_the_key(
    config: dict[str, Any], key: str, message: str
) -> None:
    app = make_app(config)
    before = current_config()
    with pytest.raises(SettingsError, match=message) as raised:
        PayiTracking(app)
    assert raised.value.key == key
    assert str(raised.value).startswith(f"{key}: ")
    assert "payi" not in app.extensions and "payi" not in app.cli.commands  # the app is left as it was
    assert current_config() is before


def test_unknown_key_lists_the_valid_keys_with_their_prefix() -> None:
    with pytest.raises(SettingsError) as raised:
        PayiTracking(make_app({"PAYI_FOO": 1}))
    assert "PAYI_EXCLUDE_PATHS" in str(raised.value) and " USER_ID" not in str(raised.value)


def test_decorator_resolvers_are_checked_when_registered() -> None:
    payi = PayiTracking()
    with pytest.raises(SettingsError, match="async function"):
        payi.user_id_loader(async_resolver)
    with pytest.raises(SettingsError, match="must take no arguments"):
        payi.account_loader(needs_request)
    assert payi.context_loader(lambda: {}) is not None


def test_init_app_applies_the_process_wide_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYI_LEDGER", raising=False)
    app = Flask("configured")
    app.config.update(
        PAYI_API_KEY="secret-key",
        PAYI_BASE_URL="https://payi.internal",
        PAYI_HEADER_HOSTS=["https://llm.internal"],
        PAYI_LEDGER=str(tmp_path / "ledger.sqlite3"),
        PAYI_PRICES={"gpt-4o-mini": [0.15, 0.6]},
        PAYI_LIMIT_IDS=["cap"],
        PAYI_INSTRUMENT=False,
    )
    payi_web.uninstrument()
    PayiTracking(app)
    config = current_config()
    assert (config.api_key, config.base_url, config.header_hosts) == (
        "secret-key",
        "https://payi.internal",
        ("https://llm.internal",),
    )
    assert config.ledger == str(tmp_path / "ledger.sqlite3")
    assert dict(config.prices) == {"gpt-4o-mini": (0.15, 0.6)}
    assert not is_instrumented()
    state = app.extensions["payi"]
    assert state.config is config and state.settings.LIMIT_IDS == ["cap"]
    assert "secret-key" not in repr(state)
    assert payi_web.get_context().limit_ids == ("cap",)  # the process root, outside requests


def test_init_app_twice_registers_the_hooks_once() -> None:
    app = make_app()
    payi = PayiTracking(app)
    payi.init_app(app)
    PayiTracking().init_app(app)
    from payi_web.flask.extension import _bind_body, _enter_request, _leave_request

    assert app.before_request_funcs[None].count(_enter_request) == 1
    assert app.after_request_funcs[None].count(_bind_body) == 1
    assert app.teardown_request_funcs[None].count(_leave_request) == 1
    assert is_instrumented()


def test_a_failed_init_app_can_be_retried_and_setup_after_serving_is_refused() -> None:
    app = make_app({"PAYI_BASE_URL": "ftp://wrong"})
    app.get("/ctx")(lambda: str(payi_web.get_context().user_id))
    payi = PayiTracking()
    with pytest.raises(SettingsError, match="PAYI_BASE_URL"):
        payi.init_app(app)
    app.config["PAYI_BASE_URL"] = "https://payi.internal"
    app.config["PAYI_USER_ID"] = lambda: "retried"
    payi.init_app(app)
    from payi_web.flask.extension import _enter_request

    assert app.before_request_funcs[None].count(_enter_request) == 1
    assert app.test_client().get("/ctx").data == b"retried"
    late = make_app()
    late.test_client().get("/login/u1")
    before = current_config()
    with pytest.raises(AssertionError, match="already handled its first request"):
        PayiTracking(late)
    assert current_config() is before and "payi" not in late.extensions
