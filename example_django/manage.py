#!/usr/bin/env python
"""Django's command-line utility for the example project: `python example_django/manage.py <command>`."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The project is the package `example_django`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
