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
	$(BIN)/pybabel -q compile -d translations

db: deps translations
	$(FLASK) db upgrade

# One gunicorn worker with threads: the in-app sandbox keeps its state in that one process.
run: db
	$(FLASK) demo seed
	@echo "Serving crm-meta at http://localhost:8000 (sandbox mode: Meta is emulated at /sandbox/meta)"
	PORT=8000 GUNICORN_WORKERS=1 GUNICORN_THREADS=$${GUNICORN_THREADS:-8} \
	SCHEDULER_ENABLED=$${SCHEDULER_ENABLED:-1} $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

lint: deps
	$(BIN)/ruff check .

test: deps translations lint
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
