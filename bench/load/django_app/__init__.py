"""The harness's Django project: users with accounts, a login view, and `/chat/<plan>/` views."""
