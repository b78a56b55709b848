# Two commands do everything on a fresh Debian machine:
#   make run   - virtualenv, install, then the daemon against the demo fleet on loopback
#   make test  - virtualenv, install, start what the tests need, lint (ruff, the import-linter
#                contracts, deptry), type-check, pytest
# Both install the `test` and `demo` extras (the tests use the demo's mail server too).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run demo test lint typecheck pytest services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

run demo: $(STAMP)
	$(BIN)/npsp-monitor demo

services:
	bash scripts/test-services.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/deptry .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
