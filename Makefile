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

demo: $(STAMP)
	$(PY) -m payi_web demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check payi_web tests bench
	$(VENV)/bin/ruff format --check payi_web tests bench
	$(VENV)/bin/mypy --strict payi_web

bench: $(STAMP)
	$(PY) bench/core_overhead.py
	$(PY) bench/instrument_overhead.py
	$(PY) bench/ledger_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
