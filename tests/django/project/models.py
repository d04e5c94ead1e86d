from __future__ import annotations

from django.conf import settings
from django.db import models


class Membership(models.Model):
    """Which account a user works for: what the ACCOUNT_NAME resolver reads."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    account_name = models.CharField(max_length=100)
