"""Django integration: `PAYI = {...}` settings, a per-request scope, system checks, the usage page.

    INSTALLED_APPS = [..., "payi_web.django"]
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "payi_web.django.middleware.PayiMiddleware", ...]
    PAYI = {"ACCOUNT_NAME": "myapp.billing.account_for_request"}

`payi_web.track` decorates views (function views, class-based views, DRF methods) as is.
"""

from __future__ import annotations

__all__: list[str] = []
