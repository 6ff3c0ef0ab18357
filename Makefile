# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: demo test faults test-unit test-integration test-web test-browser test-crash browser-deps vendor lint typecheck check bench bench-workspace constraints clean

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
	$(BIN)/pytest -q --cov --cov-report=term

# What the browser tests need from Debian: its Chromium (Playwright's own browser builds are never downloaded)
# and Japanese fonts (without them Japanese renders as boxes). Installed only when missing; needs root.
BROWSER_PACKAGES := chromium fonts-noto-cjk
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
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

test-web: $(STAMP)
	$(BIN)/pytest -q tests/web

test-browser: $(STAMP) browser-deps
	$(BIN)/pytest -q tests/browser

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
