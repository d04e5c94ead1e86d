"""Create the harness's SQLite database and its users: `python -m bench.load.django_app.setup_db N`.

Prints `{"username": [user id, account], ...}` as JSON. User n's password is `plans.PASSWORD`,
its account `plans.account(n)` (kept in `last_name`).
"""

from __future__ import annotations

import json
import os
import sys

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.load.django_app.settings"
os.environ["PAYI_LOAD"] = "off"  # creating users needs no payi-web


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from bench.load.plans import PASSWORD, account, username

    call_command("migrate", verbosity=0, interactive=False)
    count = int(sys.argv[1])
    password = make_password(PASSWORD)
    User.objects.bulk_create(
        User(username=username(n), last_name=account(n), password=password) for n in range(count)
    )
    users = {u.username: [str(u.pk), u.last_name] for u in User.objects.order_by("pk")}
    print(json.dumps(users))


if __name__ == "__main__":
    main()
