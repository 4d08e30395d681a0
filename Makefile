# The README's two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test lint venv deps lock translations messages db bench fuzz clean image image-check

# The venv's installer and the lock tool come from their own hashed lock; a venv's bundled
# setuptools goes (nothing here needs it, and the locks would not pin it).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements-tools.lock
	$(BIN)/python -m pip uninstall -q -y setuptools 2>/dev/null || true

# Every package, transitive ones included, from the hashed lock (`make lock` makes it). A
# requirements*.txt changed (e.g. by a merge) without `make lock` stops here, naming the file.
$(VENV)/.deps: requirements.lock requirements-dev.lock requirements-tools.lock \
               requirements.txt requirements-dev.txt requirements-tools.txt | $(BIN)/python
	@$(BIN)/python scripts/locks.py check
	$(BIN)/python -m pip install -q --require-hashes -r requirements-tools.lock
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
	touch $@

deps: $(VENV)/.deps
	@$(BIN)/python scripts/locks.py check

# The one command that updates the locks: re-resolves requirements*.txt (transitive packages
# to their newest allowed versions) into requirements*.lock, with hashes. Commit the diff.
lock: | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements-tools.lock
	$(BIN)/python scripts/locks.py update $(BIN)/uv

translations: deps
	$(BIN)/pybabel -q compile -d translations

db: deps translations
	$(FLASK) db upgrade

# One gunicorn worker with threads: the in-app sandbox keeps its state in that one process.
# Listens on 127.0.0.1 (this machine only: the demo login is public) unless HOST says otherwise;
# APP_ENV stays development (wsgi refuses testing, which turns CSRF off).
run: db
	@host="$${HOST:-127.0.0.1}"; port="$${PORT:-8000}"; \
	if [ "$$port" != 8000 ]; then \
	  export API_BASE_URL="$${API_BASE_URL:-http://localhost:$$port}"; \
	  export META_REDIRECT_URI="$${META_REDIRECT_URI:-http://localhost:$$port/crm/auth/meta/callback}"; \
	fi; \
	$(FLASK) demo seed || exit $$?; \
	echo "Serving crm-meta on $$host:$$port: http://localhost:$$port (sandbox mode: Meta is emulated at /sandbox/meta)"; \
	case "$$host" in \
	  127.*|localhost|::1) echo "Only this machine can reach it; HOST=0.0.0.0 make run opens it to the network." ;; \
	  *) echo "Listening on $$host: other machines can reach it, and the demo login above works for them too." ;; \
	esac; \
	HOST="$$host" PORT="$$port" GUNICORN_WORKERS=1 GUNICORN_THREADS=$${GUNICORN_THREADS:-8} \
	SCHEDULER_ENABLED=$${SCHEDULER_ENABLED:-1} exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# After changing a user-visible text: refresh the catalogue, translate, then `make translations`.
messages: deps
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -k N_ -o translations/messages.pot .
	$(BIN)/pybabel -q update -i translations/messages.pot -d translations --no-fuzzy-matching

# Benchmarks (by hand, not in `make test`; on a quiet machine): figures land in bench/results/.
# api_bench needs wrk (`apt-get install -y wrk`); all need the PostgreSQL server (BENCH_DATABASE_URL).
bench: deps
	$(BIN)/python bench/connect_bench.py
	$(BIN)/python bench/sweep_bench.py
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/sweep_cluster_bench.py
	$(BIN)/python bench/proxy_bench.py

# Schemathesis with a large budget against the app on a live port (by hand or nightly; minutes).
# `make test` runs the same test with a small one. Replay a failure with FUZZ_SEED=<printed seed>.
fuzz: deps translations
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-1000} FUZZ_PHASES=$${FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
	FUZZ_SEED=$${FUZZ_SEED:-random} $(BIN)/python -m pytest -p no:randomly -q -rP tests/api/test_fuzz.py

# ruff (the 5-parameter rule included) and mypy --strict over the domain (pyproject.toml).
lint: deps
	$(BIN)/ruff check .
	$(BIN)/mypy

test: deps translations lint
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_promtool.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The production image, with a Docker engine when one answers, else podman (installed and set
# up by scripts/ensure_podman.sh). Where no registry answers, its base is a python:3.11-slim-
# bookworm stand-in made once from Debian's packages (docker/build-base.sh). See docs/deploy.md.
IMAGE ?= crm-meta:latest
image:
	bash scripts/ensure_podman.sh
	docker/build.sh $(IMAGE)

# Build the image and prove it, one line per proof (docker/image_check.py): production start on
# this host's PostgreSQL and Redis, the API, metrics, uid, init, healthcheck, logs, SIGTERM,
# compose, layers, hadolint. Ports are free ones (never 8000); it cleans up after itself.
image-check: deps
	bash scripts/ensure_podman.sh
	STANDIN_SERVICES=1 docker/build.sh $(IMAGE)
	IMAGE=$(IMAGE) $(BIN)/python docker/image_check.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
