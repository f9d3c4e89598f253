# Lablet Cloud Manager — developer entry points.
#   make run    set everything up and start the whole local stack (Ctrl-C stops it)
#   make test   set everything up and run the whole test suite
# Everything lives in .venv; nothing needs root or Docker.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
STAMP    := $(VENV)/.lcm-installed
DASHBOARD := control-plane-api/control_plane_api/dashboard
NPM_STAMP := $(DASHBOARD)/node_modules/.lcm-installed
PACKAGES := lcm-core/pyproject.toml control-plane-api/pyproject.toml \
            worker-controller/pyproject.toml lablet-controller/pyproject.toml

# The first Python >= 3.11 found, unless PYTHON is given.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)

.PHONY: help setup run test lint bench clean

help:
	@echo "make run    start the local stack (etcd, Redis, MongoDB-wire, local AWS, CML simulator, LCM)"
	@echo "make test   run the whole test suite against real servers"
	@echo "make bench  benchmarks (bench/): fleet cycle vs the seed-001 strategy, session placement vs seed 002"
	@echo "make lint   ruff, mypy (type check) and lint-imports (layering contracts)"
	@echo "make clean  remove .venv and .lcm (local state)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: LCM needs Python 3.11 or newer (found: $$(python3 --version 2>&1 || echo none))." >&2; \
		echo "       Install python3.11+ or run: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is $$($(PYTHON) --version 2>&1); LCM needs Python 3.11 or newer." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when a pyproject.toml changed: a second `make run` starts in seconds.
$(STAMP): $(PY) $(PACKAGES)
	$(PIP) install --quiet -e "lcm-core[test]" -e control-plane-api -e worker-controller -e lablet-controller
	@touch $(STAMP)

# The dashboard's browser libraries (pinned in package-lock.json), served by the API from node_modules.
$(NPM_STAMP): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "error: the dashboard's browser libraries are installed with npm (Node.js 20+), which was not found." >&2; \
		echo "       Install Node.js and npm (e.g. apt-get install nodejs npm), then run make again." >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(STAMP) $(NPM_STAMP)

run: $(STAMP) $(NPM_STAMP)
	@exec $(PY) -m lcm_core.testing.devstack

test: $(STAMP) $(NPM_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/fleet_cycle.py $(BENCH_ARGS)
	$(PY) bench/placement.py $(PLACEMENT_ARGS)

# Configured in pyproject.toml: [tool.ruff], [tool.mypy] (the four packages), [tool.importlinter].
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .lcm
