"""The ASGI application `make demo` serves with uvicorn (so that streamed answers really stream)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")

application = get_asgi_application()
