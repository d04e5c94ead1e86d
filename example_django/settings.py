"""Settings of the example Django project (`make demo`)."""

from __future__ import annotations

import os
from pathlib import Path

from examples_shared import genai

BASE_DIR = Path(__file__).resolve().parent

# A demo on 127.0.0.1: a fixed key is fine here, never in production.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-django-demo-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "example_django.urls"
ASGI_APPLICATION = "example_django.asgi.application"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "payi_web.django",
    "example_django.assistant",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "example_django.assistant.auth.BasicAuthMiddleware",  # `curl -u alice:alice-demo ...`
    "payi_web.django.middleware.PayiMiddleware",  # after the authentication middlewares
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "example_django.assistant.context_processors.demo",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DJANGO_DB") or BASE_DIR / "db.sqlite3",
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The GenAI backend, from the environment: the offline demo model unless OPENAI_API_KEY is set.
DEMO_BACKEND = genai.select_backend()

PAYI = {
    # The demo sends usernames, so that the usage report reads "alice"; by default payi-web
    # sends the user's primary key (no personal data).
    "USER_ID": "example_django.assistant.accounts.username",
    # The account comes from the user's profile: the pattern a real app would use.
    "ACCOUNT_NAME": "example_django.assistant.accounts.account_name",
    "LIMIT_IDS": ["demo-monthly-cap"],
    # Keep the local ledger (./payi_ledger.sqlite3, or $PAYI_LEDGER) even with a Pay-i API key:
    # the usage page and `python -m payi_web report` read it.
    "LEDGER": True,
    "PRICES": genai.PRICES,
    **genai.payi_settings(DEMO_BACKEND),
}
