"""Fixtures for the services' API: service keys, tenants connected through the real flow, and their
stored connections read and changed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crm_meta.infra.database import db
from crm_meta.internal import keys
from crm_meta.models import MetaConnection
from tests.helpers.sandbox import ACCOUNT, MetaFlow
from tests.helpers.users import PASSWORD, TenantUsers, add_tenant


@dataclass
class Service:
    """A CRM service holding a key (never a Meta token)."""

    name: str
    key: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def __repr__(self) -> str:  # keep the key out of assertion messages
        return f"Service({self.name})"


@pytest.fixture
def make_key(app):
    def factory(name="marketing", scopes=("credentials:read", "graph:proxy"), app_=None) -> Service:
        with (app_ or app).app_context():
            return Service(name, keys.create(name, list(scopes)).key)

    return factory


@pytest.fixture
def service(make_key):
    return make_key()


@pytest.fixture
def connect(app, sandbox):
    """A tenant connected through our /url, the sandbox's consent and our callback, with an
    ad account selected (`account=None` selects none)."""

    def factory(slug: str, *, user_id=None, account=ACCOUNT, app_=None) -> TenantUsers:
        the_app = app_ or app
        tenant = add_tenant(the_app, slug)
        client = the_app.test_client()
        client.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
        response = MetaFlow(client, sandbox).connect(user_id=user_id)
        assert response.status_code == 200, response.get_json()
        if account:
            selected = client.post("/crm/marketing/connect", json={"account_id": account})
            assert selected.status_code == 200, selected.get_json()
        return tenant

    return factory


@pytest.fixture
def stored_token():
    """The tenant's token as the store reads it: `stored_token(app, tenant_id)`."""

    def read(app, tenant_id: int) -> str:
        from crm_meta.runtime import runtime

        with app.app_context():
            store = runtime().store
            return store.read(store.for_tenant(tenant_id))

    return read


@pytest.fixture
def set_status():
    """Change columns of the tenant's stored connection: `set_status(app, tenant_id, **columns)`."""

    def change(app, tenant_id: int, **columns) -> None:
        with app.app_context():
            row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
            for name, value in columns.items():
                setattr(row, name, value)
            db.session.commit()

    return change


@pytest.fixture
def row_of():
    """A detached copy of the tenant's stored connection: `row_of(app, tenant_id)`."""

    def read(app, tenant_id: int) -> MetaConnection:
        with app.app_context():
            row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
            db.session.expunge(row)
            return row

    return read
