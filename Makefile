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

.PHONY: help setup demo test test-fast lint bench clean

# Where PYTHONDONTWRITEBYTECODE is set (it is on our 2-core build machines) no bytecode is cached, so every
# process (each CLI run, test worker, temporary Prefect server) compiled Prefect, pydantic and the rest
# from source again: about 15 CPU seconds each. Importing what they import once here, with the cache
# allowed, writes it for good (20 s; `uv sync --compile-bytecode` would compile all 15,000 files: 52 s).
# (A module left out still works: it is compiled in memory when imported, as before.)
WARM_IMPORTS := flows.cli.app flows.nightly flows.report.build flows.report.charts flows.market.simulator flows.cli.validate \
	flows.sources.named_formats prefect.server.api.server prefect.testing.utilities prefect_dask pandera.polars \
	pandera.backends.polars.container pandera.backends.polars.components pandera.backends.polars.builtin_checks \
	moto.server s3fs pytest hypothesis
$(VENV)/.synced: pyproject.toml uv.lock Makefile
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@if command -v uv >/dev/null 2>&1; then uv sync --frozen --all-extras; else python3 -m uv sync --frozen --all-extras; fi
	@env -u PYTHONDONTWRITEBYTECODE $(PY) -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" \
		$(WARM_IMPORTS)
	@touch $@

setup: $(VENV)/.synced ## create .venv from uv.lock (installs uv with pip if missing)

demo: setup ## generate the demo market, run the pipeline, print today's signals and ideas
	$(VENV)/bin/chainsignals demo --warehouse $(WAREHOUSE)

test: setup ## the whole test suite, e2e included (what CI runs): 682 tests, 17 CPU min, 50 min wall on 2 cores at load 45
	$(VENV)/bin/pytest -n 2 --dist loadfile

test-fast: setup ## the tests not marked e2e (no Prefect server, no subprocesses): 540 tests, 1.8 CPU min, 5 min wall on 2 cores at load 45
	$(VENV)/bin/pytest -n 2 --dist loadfile -m "not e2e"

lint: setup ## ruff: the rule set in pyproject.toml and the formatter (CI runs it before the tests)
	$(VENV)/bin/ruff check flows transforms schemas tests bench
	$(VENV)/bin/ruff format --check flows transforms schemas tests bench

clean:
	rm -rf $(VENV) .prefect .pytest_cache

bench: setup ## SPEC 8: full-market nightly vs the floor, peak RSS, one-year backfill -> bench/results.md
	$(PY) -m bench.bench $(BENCH_ARGS)

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12
