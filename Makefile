# toolrt: `make demo` runs the demo on the embedded local profile, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The framework matrix's own virtualenv: toolrt beside agent frameworks, the mcp SDK as pip resolves it there.
FW_VENV := .venv-frameworks
FW_STAMP := $(FW_VENV)/.installed

.PHONY: venv frameworks-venv test-frameworks demo format test test-unit test-contract test-integration test-e2e test-security lint typecheck bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

frameworks-venv: $(FW_STAMP)

$(FW_STAMP): pyproject.toml tests/frameworks/requirements.txt
	test -x $(FW_VENV)/bin/python || $(PYTHON) -m venv $(FW_VENV)
	$(FW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FW_VENV)/bin/python -m pip install --quiet -e '.[mcp]' -r tests/frameworks/requirements.txt
	touch $(FW_STAMP)

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

# tests/e2e/test_framework_matrix.py runs the matrix in $(FW_VENV) beside the rest.
test: $(STAMP) $(FW_STAMP)
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

test-frameworks: $(FW_STAMP)
	$(FW_VENV)/bin/pytest -c tests/frameworks/pytest.ini tests/frameworks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(FW_VENV) .pytest_cache .mypy_cache .hypothesis build *.egg-info
