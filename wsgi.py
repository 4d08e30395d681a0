"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from config import ConfigError
from crm_meta import create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"crm-meta: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)
