"""HTTP Basic authentication, so that the walkthrough's curl commands can log in with `-u`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse


class BasicAuthMiddleware:
    """`Authorization: Basic ...` authenticates this one request (no session, no cookie).

    Such a request cannot be forged by another site (nothing is sent automatically: this app
    never asks a browser for Basic credentials), so it needs no CSRF token.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(credentials).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                username = password = ""
            user = authenticate(request, username=username, password=password)
            if user is None:
                return HttpResponse("Wrong username or password.\n", status=401, content_type="text/plain")
            request.user = user
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)
