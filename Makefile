# Every target builds its own environment from requirements.lock, so each one
# works on a fresh machine with only Python 3.11 installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-smoke fmt clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tasker demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests examples $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests examples $(wildcard benchmarks)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples $(wildcard benchmarks)
	$(BIN)/ruff check --fix src tests examples $(wildcard benchmarks)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(BIN)/pip install --quiet -r requirements-bench.lock
	touch $(BENCH_STAMP)

# Every scenario on both backends, with the PgQueuer/Procrastinate baselines and the
# readiness benchmark; writes benchmarks/results/*.json and the table in
# docs/performance.md (about 6-8 minutes).
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --docs docs/performance.md

# Every scenario at tiny sizes: checks the suite still works, judges no timing.
bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
