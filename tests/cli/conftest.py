"""Fixtures of the command-line tests: a token stored for a tenant and the current key id
(`flask crypto rotate`); reading it back is tests/conftest.py's `stored_token`."""

from __future__ import annotations

import pytest

from crm_meta.infra.database import db
from crm_meta.meta.store import TokenStore
from crm_meta.models import MetaConnection
from crm_meta.runtime import runtime
from tests.helpers.settings import PLAINTEXT


@pytest.fixture
def store_token():
    """Store a connection with `token` for the tenant: `store_token(app, tenant_id, token=PLAINTEXT)`."""

    def store(app, tenant_id: int, token: str = PLAINTEXT) -> None:
        with app.app_context():
            row = MetaConnection(tenant_id=tenant_id, meta_user_id="1001")
            TokenStore(runtime().cipher).write(row, token)
            db.session.add(row)
            db.session.commit()

    return store


@pytest.fixture
def kid():
    """The id of the app's current encryption key: `kid(app)`."""
    return lambda app: app.extensions["crm_meta"].cipher.current.kid
