"""The examples' tests. The example Django project's tests run in a process of their own.

`django_app/` holds them: the suite's Django test project (tests/django) configures Django for
this whole pytest process, and a process has one set of Django settings, so
`test_django_example.py` runs `django_app/` in a subprocess with the example's settings.
"""

from __future__ import annotations

collect_ignore = ["django_app"]
