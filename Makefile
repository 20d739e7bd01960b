# Every target builds its own environment from requirements.lock, so each one
# works on a fresh machine with only Python 3.11 installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-smoke soak soak-smoke fmt clean

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
	$(BIN)/ruff check src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/ruff format --check src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/mypy
	$(if $(wildcard soak),$(BIN)/mypy soak)

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/ruff check --fix src tests examples $(wildcard benchmarks) $(wildcard soak)

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

# The soak and chaos suite (issue 11, docs/reliability.md) on PostgreSQL: 10,000 tasks
# of random DAG shapes (about 100,000 steps) with misbehaving handlers, created over 7
# minutes; 4 workers under kill -9 and SIGTERM, one PostgreSQL restart, a human with
# the CLI. Writes soak/results/soak-postgres.json; 8-11 minutes on 2 cores (10 min 15 s
# measured under load). Exits 1 when an invariant fails.
# More: make soak SOAK_ARGS="--backend all --seed 7"
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -m soak $(SOAK_ARGS)

# The same at 300 tasks, about a minute per backend, on PostgreSQL and SQLite: checks
# the invariants (and the suite's own tests), judges no timing.
soak-smoke: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider soak
	$(BIN)/python -m soak --smoke --backend all $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
