"""settings.PAYI: validated at start-up (ImproperlyConfigured naming the key), re-read when changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import payi_web
from payi_web import get_context
from payi_web.django import conf
from payi_web.instrument import is_instrumented


@pytest.mark.parametrize(
    ("payi", "message"),
    [
        ({"USRE_ID": "x"}, r"PAYI\['USRE_ID'\]: unknown setting \(did you mean 'USER_ID'\?\)"),
        ({"user_id": "x"}, r"PAYI\['user_id'\]: unknown setting \(did you mean 'USER_ID'\?\)"),
        ({"LIMIT_IDS": "a,b"}, r"PAYI\['LIMIT_IDS'\]"),
        ({"LIMIT_IDS": ["a,b"]}, r"PAYI\['LIMIT_IDS'\]: .*comma"),
        ({"USE_CASE_VERSION": "2"}, r"PAYI\['USE_CASE_VERSION'\]"),
        ({"USER_ID": "no_such_module.resolve"}, r"PAYI\['USER_ID'\]: cannot import"),
        ({"ACCOUNT_NAME": 42}, r"PAYI\['ACCOUNT_NAME'\]: must be a callable or a dotted path"),
        ({"EXCLUDE_PATHS": ["("]}, r"PAYI\['EXCLUDE_PATHS'\]: bad regular expression"),
        ({"EXCLUDE_PATHS": "^/health"}, r"PAYI\['EXCLUDE_PATHS'\]"),
        ({"INSTRUMENT": "yes"}, r"PAYI\['INSTRUMENT'\]"),
        ({"BASE_URL": "ftp://payi.example"}, r"PAYI\['BASE_URL'\]"),
        ({"HEADER_HOSTS": "https://gateway"}, r"PAYI\['HEADER_HOSTS'\]"),
        (["USER_ID"], r"PAYI: must be a dict"),
    ],
)
def test_bad_settings_raise_improperly_configured_naming_the_key(payi: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message), override_settings(PAYI=payi):
        pass
    # The failed override is undone and the previous settings are in effect again.
    assert get_context().limit_ids == ("monthly-cap",)


def test_app_ready_validates_and_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    app = apps.get_app_config("payi_web")
    assert app.label == "payi_web" and app.name == "payi_web.django"
    monkeypatch.setattr(settings, "PAYI", {"LIMTI_IDS": ["x"]})
    with pytest.raises(ImproperlyConfigured, match=r"did you mean 'LIMIT_IDS'"):
        app.ready()
    monkeypatch.setattr(settings, "PAYI", {"LIMIT_IDS": ["from-ready"]})
    app.ready()
    assert get_context().limit_ids == ("from-ready",)


def test_no_payi_setting_means_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    monkeypatch.delattr(settings, "PAYI")
    loaded = conf.reload()
    assert loaded.USER_ID is None and loaded.INSTRUMENT is True
    assert get_context().limit_ids is None


def test_override_settings_takes_effect_and_is_undone() -> None:
    assert get_context().limit_ids == ("monthly-cap",)
    with override_settings(PAYI={"LIMIT_IDS": ["other"], "USE_CASE_NAME": "app", "PRICE_AS_CATEGORY": "c"}):
        ctx = get_context()
        assert ctx.limit_ids == ("other",)
        assert (ctx.use_case_name, ctx.price_as_category) == ("app", "c")
        assert conf.get_settings().ACCOUNT_NAME is None
    assert get_context().limit_ids == ("monthly-cap",)
    assert get_context().use_case_name is None


def test_connection_settings_map_onto_configure(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYI_API_KEY", raising=False)
    settings.PAYI = {
        "API_KEY": "payi-secret",
        "BASE_URL": "https://payi.example/",
        "HEADER_HOSTS": ["https://gateway.example/v1"],
        "PROXY": True,
    }
    config = payi_web.current_config()
    assert config.api_key == "payi-secret"
    assert config.base_url == "https://payi.example"
    assert config.header_hosts == ("https://gateway.example/v1",)
    assert "payi-secret" not in repr(conf.get_settings())
    assert get_context().proxy is True


def test_instrument_setting(settings: Any) -> None:
    payi_web.uninstrument()
    settings.PAYI = {"INSTRUMENT": False}
    assert not is_instrumented()
    settings.PAYI = {}
    assert is_instrumented()


def test_the_middleware_applies_the_settings_when_the_app_is_not_installed(monkeypatch: Any) -> None:
    from django.http import HttpRequest, HttpResponse

    from payi_web.django.middleware import PayiMiddleware

    monkeypatch.setattr(conf, "_current", None)
    payi_web.configure()
    seen: list[Any] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(get_context().limit_ids)
        return HttpResponse()

    request = HttpRequest()
    request.path_info = request.path = "/x/"
    PayiMiddleware(view)(request)
    assert seen == [("monthly-cap",)]
