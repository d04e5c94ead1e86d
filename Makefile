# Every target creates/updates .venv itself: a fresh machine needs only Python 3 and pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes, so repeated runs are quick and idempotent.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# The example Django app on http://127.0.0.1:8000 under uvicorn (ASGI: streamed answers really
# stream), served from here so that `python -m payi_web report` finds ./payi_ledger.sqlite3.
# Migrates and creates the demo users (alice, bob: acme; carol: globex) on the first run.
demo: $(STAMP)
	$(PY) example_django/manage.py migrate --noinput --verbosity 0
	$(PY) example_django/manage.py create_demo_users
	$(PY) -m uvicorn example_django.asgi:application --host 127.0.0.1 --port 8000 --lifespan off

# The example Flask app on http://127.0.0.1:5000 (its demo users are created at start-up).
.PHONY: demo-flask
demo-flask: $(STAMP)
	$(PY) -m flask --app example_flask run --host 127.0.0.1 --port 5000

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check payi_web tests bench example_django example_flask examples_shared
	$(VENV)/bin/ruff format --check payi_web tests bench example_django example_flask examples_shared
	$(VENV)/bin/mypy --strict payi_web

bench: $(STAMP)
	$(PY) bench/core_overhead.py
	$(PY) bench/instrument_overhead.py
	$(PY) bench/ledger_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
