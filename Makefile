# The verbs a newcomer guesses. Everything runs inside the project's own virtual environment.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
API_PORT ?= 8000
MOTO_PORT ?= 5000
SANDBOX_PORT ?= 8100

.PHONY: install run reset test lint typecheck unit integration e2e package bench clean catalogs

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 needs pip < 26.3
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The embedded AWS's data is kept in .devstack/ between runs; FRESH=1 starts clean.
run: $(STAMP)
	$(BIN)/python -m devstack --api-port $(API_PORT) --moto-port $(MOTO_PORT) --sandbox-port $(SANDBOX_PORT) \
		$(if $(FRESH),--fresh,)

reset:
	rm -rf .devstack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q -n 2

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

test: lint typecheck
	$(BIN)/pytest tests/unit tests/integration tests/fuzz -q -n 2
	$(BIN)/pytest tests/e2e tests/contract -q

package: $(STAMP)
	$(BIN)/python -m infra.package build
	$(BIN)/cfn-lint --include-checks I -- build/template.json

bench: $(STAMP)
	$(BIN)/python -m bench

# The console's translations: extract the marked text, merge it into each .po (then translate what is new or fuzzy),
# compile the .mo files the runtime reads. tests/unit/test_console_catalogs.py fails while a string is untranslated.
CATALOG := chalicelib/locale
catalogs: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --project=console -o $(CATALOG)/console.pot .
	$(BIN)/pybabel update -D console -i $(CATALOG)/console.pot -d $(CATALOG) --no-wrap --ignore-obsolete
	$(BIN)/pybabel compile -D console -d $(CATALOG) --statistics

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
