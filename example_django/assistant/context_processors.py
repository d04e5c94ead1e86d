from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from examples_shared import genai


def demo(request: HttpRequest) -> dict[str, Any]:
    """Every page says which model answers ("offline demo model" when offline)."""
    return {
        "backend": settings.DEMO_BACKEND,
        "backend_label": genai.LABELS[settings.DEMO_BACKEND],
        "offline": settings.DEMO_BACKEND == genai.OFFLINE,
    }
