# Lablet Cloud Manager — developer entry points.
#   make run    set everything up and start the whole local stack (Ctrl-C stops it)
#   make test   set everything up and run the whole test suite
#   make lock   re-pin requirements.lock after a dependency range changed in a pyproject.toml
# Everything lives in .venv, installed from requirements.lock; nothing needs root or Docker.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
STAMP    := $(VENV)/.lcm-installed
DASHBOARD := control-plane-api/control_plane_api/dashboard
NPM_STAMP := $(DASHBOARD)/node_modules/.lcm-installed
PACKAGES := lcm-core/pyproject.toml control-plane-api/pyproject.toml \
            worker-controller/pyproject.toml lablet-controller/pyproject.toml lcm-cli/pyproject.toml
LOCK     := requirements.lock
# The lock is resolved for what CI runs: CPython 3.11 on Linux x86_64, with pip-tools in a venv of its own.
LOCK_PYTHON ?= python3.11
LOCK_VENV   := .lcm/pip-tools
# checkov (tests/deploy) pins boto3, packaging and networkx at versions LCM's lock cannot share: it gets a
# venv of its own, installed from a lock of its own, which `make test` builds.
CHECKOV_LOCK  := requirements-checkov.lock
CHECKOV_VENV  := .lcm/tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.lcm-installed

# The first Python >= 3.11 found, unless PYTHON is given.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)

.PHONY: help setup run test lint lock bench clean

help:
	@echo "make run    start the local stack (etcd, Redis, MongoDB-wire, local AWS, CML simulator, LCM)"
	@echo "make test   run the whole test suite against real servers"
	@echo "make bench  benchmarks (bench/): fleet cycle vs per-worker polling, session placement vs sorting every worker,"
	@echo "            pool autoscaling over a simulated 14-day term vs a static fleet and the reactive policies"
	@echo "make lint   ruff, mypy (type check) and lint-imports (layering contracts)"
	@echo "make lock   re-pin requirements.lock from the pyproject.toml ranges (after changing a dependency)"
	@echo "make clean  remove .venv and .lcm (local state)"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: LCM needs Python 3.11 or newer (found: $$(python3 --version 2>&1 || echo none))." >&2; \
		echo "       Install python3.11+ or run: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is $$($(PYTHON) --version 2>&1); LCM needs Python 3.11 or newer." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Exactly the versions in requirements.lock, then the five local packages (the fifth is the `lcm` command line)
# editable without dependencies (the lock holds all of them); pip check fails when the lock no longer satisfies a pyproject.toml (run make lock).
# Reinstall only when the lock or a pyproject.toml changed: a second `make run` starts in seconds.
$(STAMP): $(PY) $(PACKAGES) $(LOCK)
	$(PIP) install --quiet -r $(LOCK)
	$(PIP) install --quiet --no-deps -e lcm-core -e control-plane-api -e worker-controller -e lablet-controller \
		-e lcm-cli
	$(PIP) check
	@touch $(STAMP)

# Keeps the pins that still satisfy the ranges; `make lock LOCK_ARGS=--upgrade` moves everything to the newest.
# pip-compile writes the local packages as absolute `-e file:` paths: they are dropped (make installs them).
lock:
	@$(LOCK_PYTHON) -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or \
		platform.system() != "Linux" or platform.machine() != "x86_64")' 2>/dev/null || { \
		echo "error: requirements.lock is resolved with CPython 3.11 on Linux x86_64 (what CI runs);" \
		"$(LOCK_PYTHON) is not that: give one with make LOCK_PYTHON=/path/to/python3.11 lock" >&2; exit 1; }
	@test -x $(LOCK_VENV)/bin/pip-compile || { rm -rf $(LOCK_VENV) && $(LOCK_PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install --quiet "pip-tools>=7.4,<8"; }
	@if [ -f $(LOCK) ]; then cp $(LOCK) $(LOCK).tmp; else rm -f $(LOCK).tmp; fi
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK).tmp $(LOCK_ARGS) requirements.in
	@awk '/^-e file:/ { if (!noted++) print "# (the five local packages: installed editable by make, with --no-deps)"; \
		skip = 1; next } skip && /^ +#/ { next } { skip = 0; print }' $(LOCK).tmp > $(LOCK)
	@rm -f $(LOCK).tmp
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file $(CHECKOV_LOCK) $(LOCK_ARGS) requirements-checkov.in
	@echo "requirements.lock and $(CHECKOV_LOCK) written; make setup and make test install them"

# The dashboard's browser libraries (pinned in package-lock.json), served by the API from node_modules.
$(NPM_STAMP): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "error: the dashboard's browser libraries are installed with npm (Node.js 20+), which was not found." >&2; \
		echo "       Install Node.js and npm (e.g. apt-get install nodejs npm), then run make again." >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHECKOV_STAMP): $(PY) $(CHECKOV_LOCK)
	rm -rf $(CHECKOV_VENV)
	$(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r $(CHECKOV_LOCK)
	$(CHECKOV_VENV)/bin/python -m pip check
	@touch $@

setup: $(STAMP) $(NPM_STAMP)

run: $(STAMP) $(NPM_STAMP)
	@exec $(PY) -m lcm_core.testing.devstack

test: $(STAMP) $(NPM_STAMP) $(CHECKOV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/fleet_cycle.py $(BENCH_ARGS)
	$(PY) bench/placement.py $(PLACEMENT_ARGS)
	$(PY) bench/autoscaling.py $(AUTOSCALING_ARGS)

# Configured in pyproject.toml: [tool.ruff], [tool.mypy] (the five packages), [tool.importlinter].
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .lcm
