"""The usage page: the local ledger's usage by account, user and use case, for staff only.

    urlpatterns = [..., path("payi/", include("payi_web.django.urls"))]

Read-only (GET and HEAD), never cached. An anonymous visitor is sent to the login page; a
signed-in user who is not active staff gets 403.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..ledger import render_usage_page

__all__ = ["usage"]


@never_cache
@require_safe
def usage(request: HttpRequest) -> HttpResponseBase:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("The Pay-i usage page is for staff only.")
    page = render_usage_page(since=request.GET.get("since") or None)
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["X-Robots-Tag"] = "noindex"
    return response
