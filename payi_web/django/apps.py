"""The Django app: `INSTALLED_APPS = [..., "payi_web.django"]`."""

from __future__ import annotations

from django.apps import AppConfig


class PayiConfig(AppConfig):
    name = "payi_web.django"
    label = "payi_web"
    verbose_name = "Pay-i"

    def ready(self) -> None:
        from . import checks, conf
        from .integration import DjangoIntegration

        DjangoIntegration.setup()
        checks.register()
        # Validated and applied at start-up: a bad PAYI setting raises ImproperlyConfigured here.
        conf.reload()
