#!/usr/bin/env bash
# Start crm-meta: check the configuration, wait for the database, migrate it, then exec the
# server (gunicorn) or the command given as arguments, e.g. `flask --app wsgi demo seed`.
# Works in the image and from a checkout: paths come from this file's location, and python,
# flask and gunicorn come from PATH.
set -euo pipefail

# The repository (or /app in the image) is the parent of this script's folder.
APP_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$APP_DIR"

# How long to wait for the database: attempts x seconds between them (defaults: 30 x 2 s).
DB_WAIT_ATTEMPTS="${DB_WAIT_ATTEMPTS:-30}"
DB_WAIT_SECONDS="${DB_WAIT_SECONDS:-2}"
# RUN_MIGRATIONS=0 skips `flask db upgrade` (e.g. replicas when a release job migrates).
RUN_MIGRATIONS="${RUN_MIGRATIONS:-1}"
# Exit code the database probe uses for "not reachable yet, try again" (EX_TEMPFAIL).
readonly DB_NOT_READY=75

log() { printf 'entrypoint: %s\n' "$*" >&2; }

# As PID 1 in a container bash ignores SIGTERM unless it has a handler; stop cleanly if the
# container is stopped before the server starts (bash runs this once the current step ends).
trap 'log "stopped before the server started"; exit 143' TERM INT

# The server is "no arguments" or an explicit gunicorn command line; anything else is a
# one-off command, which never hosts the keep-alive scheduler.
if [[ $# -eq 0 || "$1" == "gunicorn" ]]; then
    serving=1
else
    serving=0
fi

# Check the configuration and probe the database in one small python run. Importing wsgi
# builds the app: a configuration error makes wsgi print one line and exit non-zero, which
# is final. A database that does not answer yet exits $DB_NOT_READY, which is retried.
probe_database() {
    SCHEDULER_ENABLED=0 python - "$DB_NOT_READY" <<'PY'
import sys

not_ready = int(sys.argv[1])
from wsgi import app  # noqa: E402  (a configuration error exits here, with its own line)

from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

db = app.extensions["sqlalchemy"]
try:
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
except SQLAlchemyError as exc:
    # The driver's first line says why (refused, unknown host...) without the URL's password.
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["no detail"]
    print(f"entrypoint: database not reachable yet: {type(exc).__name__}: {lines[0]}",
          file=sys.stderr)
    sys.exit(not_ready)
PY
}

attempt=1
while true; do
    status=0
    probe_database || status=$?
    if [[ $status -eq 0 ]]; then
        break
    fi
    if [[ $status -ne $DB_NOT_READY ]]; then
        log "start-up stopped: the application could not be loaded (exit $status)"
        exit "$status"
    fi
    if (( attempt >= DB_WAIT_ATTEMPTS )); then
        log "giving up: the database did not answer after $attempt attempts"
        exit 1
    fi
    log "waiting ${DB_WAIT_SECONDS}s for the database (attempt $attempt of $DB_WAIT_ATTEMPTS)"
    sleep "$DB_WAIT_SECONDS"
    attempt=$(( attempt + 1 ))
done

if [[ "$RUN_MIGRATIONS" == "1" ]]; then
    log "migrating the database (flask db upgrade)"
    SCHEDULER_ENABLED=0 flask --app wsgi db upgrade
else
    log "RUN_MIGRATIONS=$RUN_MIGRATIONS: not migrating"
fi

# Hand over: from here on the signals (SIGTERM from `docker stop`) go straight to the server.
trap - TERM INT
if [[ $serving -eq 0 ]]; then
    export SCHEDULER_ENABLED=0
    log "running: $*"
    exec "$@"
fi

# The served app hosts the keep-alive sweep unless told otherwise; jobs take a database lock,
# so several workers or replicas never run the same job twice.
export SCHEDULER_ENABLED="${SCHEDULER_ENABLED:-1}"

# prometheus_client's multiprocess mode needs an empty folder at every start (created here, so
# a tmpfs on /tmp is enough under a read-only root filesystem).
if [[ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]]; then
    if ! mkdir -p "$PROMETHEUS_MULTIPROC_DIR" 2>/dev/null || [[ ! -w "$PROMETHEUS_MULTIPROC_DIR" ]]; then
        log "PROMETHEUS_MULTIPROC_DIR=$PROMETHEUS_MULTIPROC_DIR is not writable: with a read-only" \
            "root filesystem mount a tmpfs on /tmp (docker run --tmpfs /tmp) or point" \
            "PROMETHEUS_MULTIPROC_DIR at a writable folder"
        exit 1
    fi
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -maxdepth 1 -name '*.db' -delete
fi

if [[ $# -eq 0 ]]; then
    set -- gunicorn -c "$APP_DIR/gunicorn.conf.py" wsgi:app
fi
log "starting: $*"
exec "$@"
