# toolrt: `make demo` runs the demo on the embedded local profile, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo format test test-unit test-contract test-integration test-e2e test-security lint typecheck bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/toolrt demo

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format
	$(BIN)/ruff check --fix

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit
test-contract: $(STAMP)
	$(BIN)/pytest tests/contract
test-integration: $(STAMP)
	$(BIN)/pytest tests/integration
test-e2e: $(STAMP)
	$(BIN)/pytest tests/e2e
test-security: $(STAMP)
	$(BIN)/pytest tests/security

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis build *.egg-info
