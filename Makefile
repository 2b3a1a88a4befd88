# Two commands for a fresh machine:
#   make dev    run everything locally (Temporal dev server + Web UI, worker, embedded DB)
#   make test   run the whole test suite (SQLite and PostgreSQL, time-skipping Temporal, Prism)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.bin/prism: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's browser tests drive the system Chromium (never Playwright's downloads).
CHROMIUM ?= /usr/bin/chromium
# pytest processes (pytest-xdist): each has its own PostgreSQL database, servers and ports.
TEST_PROCESSES ?= 2
$(CHROMIUM):
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get install -y chromium \
	  || { $$sudo apt-get update && $$sudo apt-get install -y chromium; }

dev: $(STAMP)
	$(BIN)/journeys dev

test: $(STAMP) node_modules/.bin/prism $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/journeys validate journeys
	$(BIN)/journeys test journeys
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache
