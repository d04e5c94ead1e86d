"""The resolvers named in `settings.PAYI`: who is asking, and for which account.

payi-web calls them at the request's first GenAI call (not before), at most once per request.
"""

from __future__ import annotations

from django.http import HttpRequest

from .models import Profile


def username(request: HttpRequest) -> str | None:
    user = request.user
    return user.get_username() if user.is_authenticated else None


def account_name(request: HttpRequest) -> str | None:
    user = request.user
    if not user.is_authenticated:
        return None
    return Profile.objects.filter(user_id=user.pk).values_list("account__name", flat=True).first()
