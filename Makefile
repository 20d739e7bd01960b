# Every target builds its own environment from requirements.lock, so each one
# works on a fresh machine with only Python 3.11 installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench fmt clean

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

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m benchmark tests/benchmarks -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
