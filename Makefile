# The two commands: `make run` (embedded defaults) and `make test` (the whole suite on PostgreSQL).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
PYTEST_ARGS ?=
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/cps_cms

.PHONY: help run test test-slow lint fmt typecheck contracts bench system system-run services venv venv-run clean

help:
	@echo "make run    - install what is missing and run the system on embedded defaults"
	@echo "make test   - install what is missing, then lint, type checks, contracts, the suite"
	@echo "make lint | typecheck | contracts | bench | test-slow | fmt | clean"

system:
	@scripts/ensure-system.sh test

system-run:
	@scripts/ensure-system.sh run

# A new virtual environment whenever pyproject.toml changes: a package dropped from it, or one
# installed by hand, must not linger and hide a missing dependency.
$(STAMP): pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

venv: system $(STAMP)

venv-run: system-run $(STAMP)

services:
	@scripts/ensure-services.sh postgres redis pcscd

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: venv
	$(VENV)/bin/mypy .

contracts: venv
	$(VENV)/bin/lint-imports

# Two passes: what may run side by side, spread over TEST_WORKERS processes (pytest-xdist, a
# module to a worker), then what uses what the machine has once (pcscd and its virtual readers,
# the topology's fixed ports), one test at a time. The second pass collecting nothing (exit 5)
# is no failure when PYTEST_ARGS narrowed the run; the first pass must collect.
TEST_WORKERS ?= 3
PARALLEL := -n $(TEST_WORKERS) --dist loadfile
ONE_MACHINE := (pcscd or serial)

test: venv services lint typecheck contracts
	@scripts/drop-stale-test-dbs.sh
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -m "not slow and not $(ONE_MACHINE)" $(PARALLEL) --cov=cards --cov-report= $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -m "not slow and $(ONE_MACHINE)" --cov=cards --cov-append --cov-report= $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(VENV)/bin/coverage report --include='cards/*' --fail-under=95 | tail -n 1

test-slow: venv services
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -m "slow and not $(ONE_MACHINE)" -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -m "slow and $(ONE_MACHINE)" $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: venv services
	@for script in bench/*.py; do echo "== $$script"; DATABASE_URL=$(TEST_DATABASE_URL) $(PY) $$script; done

run: venv-run
	PY=$(PY) scripts/run-local.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
