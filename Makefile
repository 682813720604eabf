# chainsignals: `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
WAREHOUSE ?= warehouse

# Prefect: project-local home, no telemetry (there is no network), quiet logs for the CLI.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# The temporary Prefect server's first start (a new database) can pass the default 20 s on 2 busy cores.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: setup demo test lint bench clean

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (it is on our 2-core build machines), nothing
# caches bytecode, so every process (each CLI run, test worker, Prefect server) compiled Prefect, pydantic
# and the rest from source again: about 15 CPU seconds each. Compiled once here, they are only read.
$(VENV)/.synced: pyproject.toml uv.lock Makefile
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@if command -v uv >/dev/null 2>&1; then uv sync --frozen --all-extras --compile-bytecode; \
	else python3 -m uv sync --frozen --all-extras --compile-bytecode; fi
	@touch $@

setup: $(VENV)/.synced ## create .venv from uv.lock (installs uv with pip if missing)

demo: setup ## generate the demo market, run the pipeline, print today's signals and ideas
	$(VENV)/bin/chainsignals demo --warehouse $(WAREHOUSE)

test: setup ## the test suite
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: setup
	$(VENV)/bin/ruff check flows transforms schemas tests

clean:
	rm -rf $(VENV) .prefect .pytest_cache

bench: setup ## SPEC 8: full-market nightly vs the floor, peak RSS, one-year backfill -> bench/results.md
	$(PY) -m bench.bench $(BENCH_ARGS)
