# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: demo test test-unit test-integration test-web test-browser test-crash browser-deps vendor lint typecheck check bench bench-workspace clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/renkei demo --dir $(DEMO)

test: $(STAMP) browser-deps lint typecheck
	$(BIN)/pytest -q

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

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
