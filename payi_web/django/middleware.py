"""`PayiMiddleware`: one tracking scope per request, alive until the last byte of the response.

Put it after `AuthenticationMiddleware`. Both sync- and async-capable: Django hands it the
handler in the mode of the rest of the chain, so it causes no thread hop under ASGI and no event
loop under WSGI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from ..integration import use_frame
from . import conf
from ._request import arequest_frame, request_frame
from ._streaming import bind_response
from .integration import DjangoIntegration

__all__ = ["PayiMiddleware"]

GetResponse = Callable[[HttpRequest], Any]


class PayiMiddleware:
    """Seeds each request's scope from `settings.PAYI`.

    The scope holds the request's user id and account name (resolved at the first tracked GenAI
    call, at most once), the `CONTEXT` callable's fields, and the application-wide defaults. It is
    current while the view runs and at every step of a streamed response's content. Requests
    whose path matches `EXCLUDE_PATHS` get no scope.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        DjangoIntegration.setup()
        conf.get_settings()  # validated and applied, even if the app is not in INSTALLED_APPS

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        settings = conf.get_settings()
        if settings.EXCLUDE_PATHS and settings.is_excluded(request.path_info):
            return self.get_response(request)
        frame = request_frame(request, settings)
        with use_frame(frame):
            response: HttpResponseBase = self.get_response(request)
        return bind_response(response, frame)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        settings = conf.get_settings()
        if settings.EXCLUDE_PATHS and settings.is_excluded(request.path_info):
            return await get_response(request)
        frame = await arequest_frame(request, settings)
        with use_frame(frame):
            response = await get_response(request)
        return bind_response(response, frame)
