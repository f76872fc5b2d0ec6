# JP-LINK developer entry points. `make demo` and `make test` are the two
# commands a newcomer needs (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test test-fast fuzz lint format demo demo-down bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The whole suite: unit, property, integration (SQLite and a throw-away
# PostgreSQL started by the suite), interop with openssl, end to end.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --hypothesis-profile=repeatable

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not postgres"

# The property (Hypothesis) tests with fresh random examples, ROUNDS times
# (each round draws new ones): where new failures are looked for.
ROUNDS ?= 5
fuzz: $(STAMP)
	for i in $$(seq $(ROUNDS)); do \
	  $(BIN)/python -m pytest -q -n 2 -m hypothesis -p no:cacheprovider \
	    --hypothesis-profile=explore || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A whole local network (CA/OCSP/TSA, central server, adapter, three security
# servers) onboarded through the real flows, then one signed exchange. It keeps
# running in the background until `make demo-down` / `jplink network down`.
DEMO_DIR ?= .demo

demo: $(STAMP)
	@if [ -f $(DEMO_DIR)/network.json ]; then \
		if $(BIN)/jplink network status --dir $(DEMO_DIR) --json | grep -q '"running": true'; then \
			echo "A demo network is already running: make demo-down first"; exit 1; \
		fi; \
		echo "Removing the stopped demo network in $(DEMO_DIR)"; rm -rf $(DEMO_DIR); \
	fi
	$(BIN)/jplink network up --dir $(DEMO_DIR)
	@echo
	@echo "The network keeps running. Stop it with:  make demo-down DEMO_DIR=$(DEMO_DIR)"
	@echo "  (or: $(BIN)/jplink network down --dir $(DEMO_DIR))"

demo-down: $(STAMP)
	$(BIN)/jplink network down --dir $(DEMO_DIR)
	rm -rf $(DEMO_DIR)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
