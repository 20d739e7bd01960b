# Every target builds its own environment from the committed locks, so each one works
# on a fresh machine with only Python 3.11 (or newer) installed:
#   requirements.lock      what `tasker demo` needs: the package without extras (make demo)
#   requirements-dev.lock  everything the tests, lint and soak need (make test, lint, ...)
# `make lock` regenerates both (and the benchmark lock) after a change to pyproject.toml.

# Tasker needs Python 3.11 or newer. Unless PYTHON is given, the first of these that is
# new enough builds the environment (python3 may be older, e.g. 3.10 on Ubuntu 22.04).
PYTHON_CANDIDATES := python3 python3.13 python3.12 python3.11
PYTHON ?= $(shell for p in $(PYTHON_CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: demo test test-lowest test-wheel lint bench bench-smoke soak soak-smoke fmt lock clean screenshots

$(BIN)/python:
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		echo "Tasker needs Python 3.11 or newer (3.11 and 3.13 are tested)." >&2; \
		echo "None of $(if $(PYTHON),$(PYTHON),$(PYTHON_CANDIDATES)) is; install one (e.g. apt install python3.11)" >&2; \
		echo "and run make again, or name it: make $(or $(MAKECMDGOALS),demo) PYTHON=/path/to/python3.11" >&2; \
		exit 1; \
	fi
	@echo "Creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version)); Tasker needs Python >= 3.11"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package itself, editable. A venv made before the rename to tasker-workflows still
# holds tasker-py, whose pytest plugin would then register twice: remove it.
define install_package
	$(BIN)/pip uninstall --quiet --yes tasker-py 2>/dev/null || true
	$(BIN)/pip install --quiet --no-deps -e .
endef

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(install_package)
	touch $(RUNTIME_STAMP)

$(STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(install_package)
	touch $(RUNTIME_STAMP) $(STAMP)

venv: $(STAMP)

# The runtime lock alone: no test tools (a venv that has them keeps them).
demo: $(RUNTIME_STAMP)
	$(BIN)/tasker demo
	@echo "(The commands above need the environment: source $(VENV)/bin/activate first.)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The suite against the lowest versions pyproject.toml declares (uv's lowest-direct
# resolution: every direct dependency at its floor, the rest at their newest), in a
# venv of its own. Unit, integration and the CLI and API acceptance tests (about 3 min):
# the floors that matter (Typer, FastAPI, psycopg) are all exercised there; the rest of
# the acceptance suite runs the same code paths at a much higher cost.
LOWEST_VENV ?= .venv-lowest
LOWEST_TESTS ?= tests/unit tests/integration tests/acceptance/test_cli.py tests/acceptance/test_api.py
test-lowest: $(STAMP)
	rm -rf $(LOWEST_VENV)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST_VENV)
	$(BIN)/uv pip compile --quiet --resolution lowest-direct --python $(LOWEST_VENV)/bin/python \
		--extra dev --extra api --extra otel --no-header -o $(LOWEST_VENV)/lowest.lock pyproject.toml
	VIRTUAL_ENV=$(LOWEST_VENV) $(BIN)/uv pip install --quiet -r $(LOWEST_VENV)/lowest.lock
	VIRTUAL_ENV=$(LOWEST_VENV) $(BIN)/uv pip install --quiet --no-deps -e .
	@grep -E '^(typer|fastapi|psycopg|jsonschema|pyyaml|rich|httpx|uvicorn)==' $(LOWEST_VENV)/lowest.lock
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

# What a user gets from `pip install tasker-workflows`: build the wheel, install it (at the
# runtime lock's versions) into a clean venv, and check that `tasker` works there without
# the checkout: the demo runs, and `tasker serve` names the extra it needs.
WHEEL_DIR ?= .wheel-check
test-wheel: $(STAMP)
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)/run
	$(BIN)/pip wheel --quiet --no-deps -w $(WHEEL_DIR) . 2>&1 | tee $(WHEEL_DIR)/build.log
	! grep -i "deprecat" $(WHEEL_DIR)/build.log
	$(BIN)/python -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/pip install --quiet -c requirements.lock $(WHEEL_DIR)/tasker_workflows-*.whl
	cd $(WHEEL_DIR)/run && ../venv/bin/tasker --version
	cd $(WHEEL_DIR)/run && ../venv/bin/tasker demo --dir demo > demo.log && grep -q "Done in" demo.log
	cd $(WHEEL_DIR)/run && { ../venv/bin/tasker serve 2> serve.err; test $$? -eq 2; } \
		&& grep -q "pip install 'tasker-workflows\[api\]'" serve.err
	@echo "test-wheel: $$(du -sh $(WHEEL_DIR)/venv | cut -f1) installed, tasker works from the wheel"

# Regenerate the locks from pyproject.toml, keeping every pin that still fits.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-emit-index-url \
		-o requirements.lock pyproject.toml
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-emit-index-url \
		--extra dev --extra api --extra otel -o requirements-dev.lock pyproject.toml
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-emit-index-url \
		-c requirements-dev.lock -o requirements-bench.lock requirements-bench.in

lint: $(STAMP)
	$(BIN)/ruff check src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/ruff format --check src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/mypy
	$(if $(wildcard soak),$(BIN)/mypy soak)

fmt: $(STAMP)
	$(BIN)/ruff format src tests examples $(wildcard benchmarks) $(wildcard soak)
	$(BIN)/ruff check --fix src tests examples $(wildcard benchmarks) $(wildcard soak)

# The screenshots of docs/dashboard.md, anew: tasker demo, tasker serve and a worker in a
# temporary directory, photographed by the browser tests' Chromium (about 15 s).
screenshots: $(STAMP)
	$(BIN)/python tests/browser/screenshots.py docs/images/dashboard

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(BIN)/pip install --quiet -r requirements-bench.lock
	touch $(BENCH_STAMP)

# Every scenario on both backends, with the PgQueuer/Procrastinate baselines and the
# readiness benchmark; writes benchmarks/results/*.json and the table in
# docs/performance.md (about 25 minutes, 11 of them seeding history_scale's 10M steps).
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
	rm -rf $(VENV) $(LOWEST_VENV) $(WHEEL_DIR) .pytest_cache .mypy_cache .ruff_cache
