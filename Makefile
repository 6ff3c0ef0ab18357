# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: demo test test-unit test-integration test-web test-browser test-crash browser-deps vendor lint typecheck check bench bench-workspace proof constraints clean

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

# After changing dependencies in pyproject.toml: resolve them afresh into .venv, then record what it holds.
constraints: $(STAMP)
	$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .coverage .coverage.*
