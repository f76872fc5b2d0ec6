# JP-LINK developer entry points. `make demo` and `make test` are the two
# commands a newcomer needs (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test test-fast lint format demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The whole suite: unit, property, integration (SQLite and a throw-away
# PostgreSQL started by the suite), interop with openssl, end to end.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not postgres"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	@if $(BIN)/python -c 'import jplink.network' 2>/dev/null; then \
		$(BIN)/jplink network up --home .demo; \
	else \
		echo "The local network (jplink network up) is not built yet: see README.md, Status."; \
		echo "Meanwhile: $(BIN)/jplink ca init --home .demo/ca && $(BIN)/jplink ca serve --home .demo/ca"; \
		exit 1; \
	fi

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
