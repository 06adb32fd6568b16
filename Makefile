# Two entry points: `make demo` installs and runs the main job against the local emulator into
# DuckDB; `make test` installs the test dependencies and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev bench lint

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
		echo "$(PYTHON) is not Python 3.11; run with PYTHON=python3.11 (or its path)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/python -m amazon_sc_assets.demo

test: install-dev
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python bench/run.py

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
