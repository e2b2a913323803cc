# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: test demo lint servers web browser bench bench-wire bench-store bench-coverage bench-api bench-import bench-registry bench-scaled bench-track bench-logs bench-web clean

$(BIN)/agridrone: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

servers:
	bash scripts/install-servers.sh

# The web app's Leaflet (npm ci of web/package-lock.json, copied into web/static/vendor).
web:
	bash scripts/build-web.sh

# Debian's chromium, which the browser tests (tests/browser) drive through Playwright.
browser:
	bash scripts/install-browser.sh

lint: $(BIN)/agridrone
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(BIN)/agridrone servers browser web lint
	$(BIN)/pytest

demo: $(BIN)/agridrone web
	$(BIN)/agridrone demo

# Benchmarks (not tests): each prints its baseline beside our figure; see docs/benchmarks.md.
bench: $(BIN)/agridrone servers
	$(BIN)/python -m bench.ingest

bench-wire: $(BIN)/agridrone
	$(BIN)/python -m bench.wire

bench-store: $(BIN)/agridrone servers
	$(BIN)/python -m bench.store

bench-coverage: $(BIN)/agridrone
	$(BIN)/python -m bench.coverage

bench-api: $(BIN)/agridrone
	$(BIN)/python -m bench.api

bench-import: $(BIN)/agridrone
	$(BIN)/python -m bench.fields_import

bench-scaled: $(BIN)/agridrone servers
	$(BIN)/python -m bench.scaled

bench-track: $(BIN)/agridrone servers
	$(BIN)/python -m bench.track

bench-logs: $(BIN)/agridrone
	$(BIN)/python -m bench.logs_import --big

bench-registry: $(BIN)/agridrone
	$(BIN)/python -m bench.registry

bench-web: $(BIN)/agridrone browser web
	$(BIN)/python -m bench.web

clean:
	rm -rf $(VENV) .servers var .mypy_cache .ruff_cache .pytest_cache
