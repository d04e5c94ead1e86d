"""Settings of the harness's Django project. `PAYI_LOAD=off`: the same project without payi-web.

Sessions are signed cookies (no session table); the user is loaded from SQLite on each request,
as `AuthenticationMiddleware` does. A user's account is kept in its `last_name`, so resolving
it costs no query beyond the user's own. The ledger is off (`LEDGER: False`): the harness
measures attribution and the request path, not the local ledger's writes.
"""

from __future__ import annotations

import os

from bench.load.plans import ENV_DB, ENV_PROVIDER, ENV_SERVER, payi_on

PAYI_ON = payi_on()
ASYNC = os.environ.get(ENV_SERVER, "asgi") == "asgi"
PROVIDER = os.environ.get(ENV_PROVIDER, "http://127.0.0.1:9")

SECRET_KEY = "payi-web-load-harness-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "bench.load.django_app.urls"
WSGI_APPLICATION = "bench.load.django_app.wsgi.application"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    *(["payi_web.django"] if PAYI_ON else []),
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    *(["payi_web.django.middleware.PayiMiddleware"] if PAYI_ON else []),
]

SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(ENV_DB, "payi_load.sqlite3"),
        "CONN_MAX_AGE": None if not ASYNC else 0,
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # cheap logins: a harness only
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

if PAYI_ON:
    _resolvers = "bench.load.django_app.resolvers"
    PAYI = {
        "ACCOUNT_NAME": f"{_resolvers}.{'aaccount_name' if ASYNC else 'account_name'}",
        "CONTEXT": f"{_resolvers}.request_context",
        "HEADER_HOSTS": [PROVIDER],
        # Nothing is bound for Pay-i itself: its URL is a closed port on 127.0.0.1, and no API key is set.
        "BASE_URL": "http://127.0.0.1:9",
        "LEDGER": False,
        "EXCLUDE_PATHS": [r"^/health/"],
    }
