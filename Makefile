# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: demo test bench bench-all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium, which the dashboard's browser tests drive through Playwright. Make skips
# this when the file exists; otherwise it installs the package, through sudo when not root.
$(CHROMIUM):
	@missing="the dashboard's browser tests need $(CHROMIUM) (Debian's chromium package)"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: $$missing and this machine has no apt-get: install Chromium so that $(CHROMIUM) exists, then run make test again" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; echo "make: $$missing: installing it with sudo apt-get" >&2; \
	else echo "make: $$missing: run 'apt-get install chromium' as root (there is no sudo here), then make test again" >&2; exit 1; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| { echo "make: $$missing and 'apt-get install chromium' failed (see above)" >&2; exit 1; }

demo: $(STAMP)
	$(BIN)/tpc demo

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/extract.py

# Every benchmark, one after the other (the PostgreSQL parts need the server on 127.0.0.1).
bench-all: $(STAMP)
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/orchestration.py
	$(BIN)/python benchmarks/workers.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache benchmarks/.corpus
