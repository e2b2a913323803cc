# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: test demo lint check servers bench clean

$(BIN)/agridrone: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

servers:
	bash scripts/install-servers.sh

lint: $(BIN)/agridrone
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(BIN)/agridrone servers lint
	$(BIN)/pytest

demo: $(BIN)/agridrone
	$(BIN)/agridrone demo

bench: $(BIN)/agridrone servers
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) .servers var .mypy_cache .ruff_cache .pytest_cache
