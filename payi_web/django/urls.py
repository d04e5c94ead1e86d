"""`path("payi/", include("payi_web.django.urls"))` mounts the usage page (URL name `payi_web:usage`)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "payi_web"

urlpatterns = [path("", views.usage, name="usage")]
