"""crm-meta under gunicorn for tests, as production serves it:
`gunicorn 'tests.internal.gunicorn_app:build()'`, the app's settings as JSON in
CRM_META_TEST_SETTINGS."""

from __future__ import annotations

import json
import os


def build():
    from config import TestingConfig
    from crm_meta.app import create_app

    return create_app(TestingConfig(**json.loads(os.environ["CRM_META_TEST_SETTINGS"])))
