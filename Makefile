# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
# The tests run in parallel (pytest-xdist): one worker per core by default; `make test WORKERS=0` runs them
# in the pytest process itself. --dist loadscope keeps each module on one worker, so a module's fixtures (its
# world) are built once; --no-loadscope-reorder hands the modules out in collection order (browser and crash
# first: few tests, long), not by number of tests, which left the long crash modules for last on one worker.
WORKERS ?= auto
PYTEST  := $(BIN)/pytest -q -n $(WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: demo test faults test-unit test-integration test-web test-browser test-crash test-fuzz fuzz browser-deps vendor lint typecheck check bench bench-workspace bench-pages load proof constraints clean

# constraints.txt pins every package to the version the tests passed with (`make constraints` refreshes it).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/renkei demo --dir $(DEMO) --serve

# The whole suite with branch coverage of src/renkei (subprocesses included): below the floor
# (fail_under in pyproject.toml) it fails.
test: $(STAMP) browser-deps lint typecheck
	rm -f .coverage .coverage.*
	$(PYTEST) --cov --cov-report=term

# What the browser tests need from Debian: its Chromium (Playwright's own browser builds are never downloaded)
# and Japanese fonts (without them Japanese renders as boxes); Pango for WeasyPrint (the inspection report's PDF).
# Installed only when missing; needs root.
BROWSER_PACKAGES := chromium fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0
browser-deps:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing $(BROWSER_PACKAGES) for the browser tests"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "run as root: apt-get install -y $(BROWSER_PACKAGES)" >&2; exit 1; fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(BROWSER_PACKAGES); }

# The vendored browser files (htmx, axe-core …): pinned in web/vendor/package.json, copied by build.mjs,
# committed. Run after changing a version; the portal and CI never need npm.
vendor:
	cd web/vendor && npm ci --ignore-scripts --no-audit --no-fund && node build.mjs

# One layer at a time (each is part of `make test`).
test-unit: $(STAMP)
	$(PYTEST) tests/unit

test-integration: $(STAMP)
	$(PYTEST) tests/integration

test-web: $(STAMP)
	$(PYTEST) tests/web

test-browser: $(STAMP) browser-deps
	$(PYTEST) tests/browser

test-crash: $(STAMP)
	$(PYTEST) tests/crash

# Fuzzing (docs/security.md "Fuzzing"): the default example counts inside `make test` (well under a minute);
# `make fuzz` runs the same tests long, outside `make test` (FUZZ_EXAMPLES examples each).
FUZZ_EXAMPLES ?= 5000
test-fuzz: $(STAMP)
	$(PYTEST) tests/fuzz

fuzz: $(STAMP)
	HYPOTHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider tests/fuzz

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

# The long attack run (outside `make test`, which runs the short one): schemathesis with many cases per
# operation, role and mode, then sqlmap against a running portal (benchmarks/attack_sqlmap.py; docs/reliability.md).
proof: $(STAMP)
	RENKEI_ATTACK_EXAMPLES=$${RENKEI_ATTACK_EXAMPLES:-50} $(BIN)/pytest -q -p no:randomly tests/web/test_schemathesis.py
	@if command -v sqlmap >/dev/null && [ -f benchmarks/attack_sqlmap.py ]; then $(BIN)/python benchmarks/attack_sqlmap.py; \
	  else echo "sqlmap or benchmarks/attack_sqlmap.py missing: apt-get install -y sqlmap" >&2; exit 1; fi

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_extract.py --residents 1500000

bench-workspace: $(STAMP)
	$(BIN)/python benchmarks/bench_workspace.py

# Page speed: every page at p95 with 20 concurrent users on the demo city, /favicon.ico as the floor.
PAGES_DIR ?= bench-pages-run
bench-pages: $(STAMP)
	$(BIN)/renkei demo --dir $(PAGES_DIR) > /dev/null
	$(BIN)/python benchmarks/bench_load.py pages --demo $(PAGES_DIR) --page-think 1,5
	$(BIN)/python benchmarks/bench_load.py pages --demo $(PAGES_DIR)

# Load (outside `make test`): 50 simulated staff for 5 minutes, then a ramp, against a hub whose catalog is a
# fresh PostgreSQL database on 127.0.0.1 (dropped and created here); loopback only.
LOAD_DIR       ?= load-run
LOAD_DB        ?= renkei_load
LOAD_URL       ?= postgresql+psycopg://postgres@127.0.0.1:5432/$(LOAD_DB)
LOAD_RESIDENTS ?= 100000
LOAD_YEARS     ?= 10
load: $(STAMP)
	psql -h 127.0.0.1 -U postgres -q -c 'DROP DATABASE IF EXISTS $(LOAD_DB)' -c 'CREATE DATABASE $(LOAD_DB)'
	RENKEI_DATABASE_URL=$(LOAD_URL) $(BIN)/renkei demo --dir $(LOAD_DIR) --residents $(LOAD_RESIDENTS) \
	  --years $(LOAD_YEARS) > /dev/null
	$(BIN)/python benchmarks/bench_load.py load --demo $(LOAD_DIR) --database-url $(LOAD_URL) --ramp 10,25,100

# After changing dependencies in pyproject.toml: resolve them afresh into .venv, then record what it holds.
constraints: $(STAMP)
	$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .coverage .coverage.*

# The fault suite (outside `make test`, which runs its smoke version tests/faults/test_fault_smoke.py): kill -9
# loops, 100 landed kills per operation on SQLite and PostgreSQL (tests/faults/suite.py), then the fault and
# crash tests (terminated connections, full disk and TMPDIR, damaged vaults, concurrent importers).
# Figures: docs/reliability.md ("Fault suite").
FAULT_KILLS ?= 100
faults: $(STAMP)
	$(BIN)/python -m tests.faults.suite --kills $(FAULT_KILLS) --databases sqlite,postgres --json faults.json
	$(BIN)/pytest -q -p no:cacheprovider tests/crash tests/integration/test_faults.py \
	  tests/integration/test_vault_verify.py tests/faults
