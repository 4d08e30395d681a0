# The README's two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test lint venv deps translations db clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the pinned requirements change.
$(VENV)/.deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps

translations: deps
	$(BIN)/pybabel compile -q -d translations

db: deps translations
	$(FLASK) db upgrade

run: db
	$(FLASK) demo seed
	@echo "Serving crm-meta at http://localhost:8000 (sandbox mode: Meta is emulated at /sandbox/meta)"
	SCHEDULER_ENABLED=$${SCHEDULER_ENABLED:-1} $(FLASK) run --host 0.0.0.0 --port 8000 --with-threads --no-reload

lint: deps
	$(BIN)/ruff check .

test: deps translations lint
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
