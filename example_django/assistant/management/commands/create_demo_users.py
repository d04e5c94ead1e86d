"""`manage.py create_demo_users`: alice and bob in account "acme", carol in "globex" (idempotent)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from example_django.assistant.demo_users import DEMO_USERS
from example_django.assistant.models import Account, Profile


class Command(BaseCommand):
    help = "Create the demo users and their accounts, unless they exist."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        created = []
        with transaction.atomic():
            for username, password, account_name in DEMO_USERS:
                account, _ = Account.objects.get_or_create(name=account_name)
                user = User.objects.filter(username=username).first()
                if user is None:
                    user = User.objects.create_user(username=username, password=password)
                    created.append(username)
                Profile.objects.get_or_create(user=user, defaults={"account": account})
        if created:
            self.stdout.write(f"Created the demo users: {', '.join(created)}.")
        for username, password, account_name in DEMO_USERS:
            self.stdout.write(f"  log in as {username} / {password}  (account {account_name})")
