"""Every private attribute of Django, Flask, Flask-Login, asgiref and the standard library that
payi-web's framework layers read (`payi_web._compat.django`, `.flask`, `.asgiref`, `.stdlib`) is
still there in the installed release: a release that drops one fails here, loudly, by name."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from typing import Any

import django
import flask
import flask_login
import pytest
from asgiref.sync import async_to_sync, sync_to_async

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.project.settings")
from django.apps import apps

if not apps.ready:
    django.setup()

from django.contrib.auth import middleware as auth_middleware
from django.http import StreamingHttpResponse
from django.test import RequestFactory
from django.utils.functional import SimpleLazyObject

from payi_web._compat import MissingPrivate
from payi_web._compat import asgiref as asgiref_compat
from payi_web._compat import django as django_compat
from payi_web._compat import flask as flask_compat
from payi_web._compat.stdlib import running_loop

# --- Django -----------------------------------------------------------------------------------


def test_a_streaming_response_keeps_its_body_and_closes_what_it_is_given_in_order(
    django_db_blocker: Any,
) -> None:
    body = iter([b"a", b"b"])
    response = StreamingHttpResponse(body)
    assert django_compat.streaming_body(response) is body
    closed: list[str] = []
    django_compat.add_closer(response, lambda: closed.append("first"))
    django_compat.add_closer(response, lambda: closed.append("last"))
    django_compat.move_last_closer_first(response)
    with django_db_blocker.unblock():  # close() sends request_finished, which closes connections
        response.close()  # Django runs its _resource_closers
    assert closed == ["last", "first"]


def test_missing_django_privates_are_named() -> None:
    with pytest.raises(MissingPrivate, match="_iterator"):
        django_compat.streaming_body(object())  # type: ignore[arg-type]
    with pytest.raises(MissingPrivate, match="_resource_closers"):
        django_compat.add_closer(object(), lambda: None)  # type: ignore[arg-type]


def test_a_lazy_object_is_read_without_evaluating_it() -> None:
    loads: list[int] = []
    lazy = SimpleLazyObject(lambda: loads.append(1) or "user")
    assert django_compat.is_empty(django_compat.loaded_object(lazy)) and loads == []
    assert str(lazy) == "user"
    assert django_compat.loaded_object(lazy) == "user" and loads == [1]


@pytest.mark.skipif(django.VERSION < (5, 0), reason="request.auser() (and so its cache) is new in Django 5.0")
def test_an_async_views_user_is_cached_where_payi_web_reads_it() -> None:
    # AuthenticationMiddleware's auser() caches the user it loaded on the request, by this name.
    assert "_acached_user" in inspect.getsource(auth_middleware.auser)
    request = RequestFactory().get("/")
    assert django_compat.cached_async_user(request) is None
    request._acached_user = "alice"  # type: ignore[attr-defined]  # what auser() does
    assert django_compat.cached_async_user(request) == "alice"


# --- asgiref ----------------------------------------------------------------------------------


def test_asgiref_threads_are_told_from_others() -> None:
    outside: list[bool] = []
    thread = threading.Thread(target=lambda: outside.append(asgiref_compat.in_asgiref_thread()))
    thread.start()
    thread.join()
    assert outside == [False]

    async def from_a_sync_to_async_thread() -> bool:
        return await sync_to_async(asgiref_compat.in_asgiref_thread, thread_sensitive=False)()

    assert async_to_sync(from_a_sync_to_async_thread)() is True


# --- the standard library ---------------------------------------------------------------------


def test_the_running_loop_is_read_without_an_exception() -> None:
    assert running_loop() is None

    async def inside() -> asyncio.AbstractEventLoop | None:
        return running_loop()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(inside()) is loop
    finally:
        loop.close()


# --- Flask, Werkzeug, Flask-Login -------------------------------------------------------------


def test_flask_contexts_are_read_and_set_through_its_context_variables() -> None:
    app = flask.Flask("compat")
    assert flask_compat.request_context() is None and flask_compat.app_context() is None
    with app.test_request_context("/here"):
        request_ctx, app_ctx = flask_compat.request_context(), flask_compat.app_context()
        assert request_ctx.request.path == "/here" and app_ctx.app is app
    assert flask_compat.request_context() is None
    tokens = flask_compat.set_contexts(app_ctx, request_ctx)
    try:
        assert flask.request.path == "/here" and flask.current_app._get_current_object() is app
    finally:
        flask_compat.reset_contexts(tokens)
    assert flask_compat.request_context() is None and flask_compat.app_context() is None


def test_proxies_give_what_they_stand_for() -> None:
    app = flask.Flask("compat")
    with app.app_context():
        assert flask_compat.proxied_object(flask.current_app) is app
    with pytest.raises(MissingPrivate, match="_get_current_object"):
        flask_compat.proxied_object(object())


def test_flask_logins_user_is_read_where_it_keeps_it() -> None:
    class User(flask_login.UserMixin):  # type: ignore[misc]
        id = "u1"

    app = flask.Flask("compat")
    app.secret_key = "test"
    flask_login.LoginManager(app).user_loader(lambda _id: None)
    with app.test_request_context("/"):
        app_ctx: Any = flask_compat.app_context()
        assert flask_compat.logged_in_user(app_ctx) is None  # not loaded yet
        flask_login.login_user(User())
        assert flask_compat.logged_in_user(app_ctx).id == "u1"
        assert flask_compat.proxied_object(flask_login.current_user).id == "u1"
