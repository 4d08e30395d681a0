"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`.

The serving side of the app lives here, outside the factory: log handlers for servers and
commands. Gunicorn starts each worker's scheduler (gunicorn.conf.py's post_worker_init,
honouring SCHEDULER_ENABLED); `flask jobs run` hosts the jobs in a process of their own.
"""

import sys

from config import ConfigError
from crm_meta.app import create_app
from crm_meta.ops import logs, redaction

try:
    app = create_app()
except ConfigError as exc:
    print(f"crm-meta: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)
logs.configure(app.config)
redaction.install()  # again: the handler just configured gets the redacting filter too
