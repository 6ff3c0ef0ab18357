# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: demo test test-unit test-integration test-web test-crash lint typecheck check bench bench-workspace clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/renkei demo --dir $(DEMO)

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q

# One layer at a time (each is part of `make test`).
test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-web: $(STAMP)
	$(BIN)/pytest -q tests/web

test-crash: $(STAMP)
	$(BIN)/pytest -q tests/crash

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_extract.py --residents 1500000

bench-workspace: $(STAMP)
	$(BIN)/python benchmarks/bench_workspace.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
