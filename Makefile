# The two commands (README): `make pipeline` sets up and runs every study; `make test` sets up and runs the tests.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: setup pipeline test test-fast lint format report bench clean-state

setup:
	bash scripts/setup.sh

pipeline: setup
	TENFOLD_JOBS=$(or $(JOBS),$(TENFOLD_JOBS),auto) TENFOLD_FORCE=$(FORCE) bash scripts/pipeline.sh

# the suite in TEST_WORKERS processes (default: one per core), a test file per process at a time: the slow tests
# wait on servers and start interpreters, so two of them share 2 cores well (benchmarks/results.md, "CI time")
test: setup lint
	$(ENV) python -m pytest -m "slow or not slow" -q --durations=25 -n $(or $(TEST_WORKERS),auto) --dist loadfile

test-fast: setup
	$(ENV) python -m pytest -q

lint: setup
	$(ENV) ruff check . && ruff format --check .

format: setup
	$(ENV) ruff check --fix . && ruff format .

report: setup
	$(ENV) python -m flows.cli report

bench: setup
	$(ENV) python -m benchmarks.run_all
