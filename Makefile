# The README's two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test lint venv deps translations messages db bench fuzz clean

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

# After changing a user-visible text: refresh the catalogue, translate, then `make translations`.
messages: deps
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -k N_ -o translations/messages.pot .
	$(BIN)/pybabel -q update -i translations/messages.pot -d translations --no-fuzzy-matching

# Benchmarks (by hand, not in `make test`): figures land in bench/results/.
bench: deps
	$(BIN)/python bench/connect_bench.py
	$(BIN)/python bench/sweep_bench.py

# Schemathesis with a large budget against the app on a live port (by hand or nightly; minutes).
# `make test` runs the same test with a small one. Replay a failure with FUZZ_SEED=<printed seed>.
fuzz: deps translations
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-1000} FUZZ_PHASES=$${FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
	FUZZ_SEED=$${FUZZ_SEED:-random} $(BIN)/python -m pytest -p no:randomly -q -rP tests/api/test_fuzz.py

lint: deps
	$(BIN)/ruff check .

test: deps translations lint
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_promtool.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
