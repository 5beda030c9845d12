# Two commands matter: `make demo` and `make test`. Both set up the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared

.PHONY: setup test lint demo score bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

demo: setup
	$(PY) -m chalicelib demo --serve

score: setup
	$(PY) $(SHARED)/eval/score.py $(SHARED)/corpus/dev

bench: setup
	$(PY) bench/extract.py --shared $(SHARED)
	$(PY) bench/ingest.py --shared $(SHARED)
	$(PY) bench/api.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
