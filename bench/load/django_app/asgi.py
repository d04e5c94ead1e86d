import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.load.django_app.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
