from __future__ import annotations

from django.conf import settings
from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.login_view),
    path("health/", views.health),
    *(path(f"chat/{plan}/", view) for plan, view in views.chat_views(settings.ASYNC).items()),
]
