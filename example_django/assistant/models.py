from django.conf import settings
from django.db import models


class Account(models.Model):
    """A customer account: what Pay-i attributes (and limits) spending to."""

    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    """Which account a user works for: what the `ACCOUNT_NAME` resolver reads."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="members")

    def __str__(self) -> str:
        return f"{self.user} @ {self.account}"
