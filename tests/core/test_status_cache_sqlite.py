"""SQLite (the embedded default) has no trigger and no LISTEN: no status cache there, so a
write made by another connection, crm-meta's or not, is read at once."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from crm_meta.infra import statuscache
from crm_meta.infra.database import db
from tests.helpers.sandbox import MetaFlow
from tests.helpers.users import AuthActions, add_tenant, bearer

STATUS = "/crm/marketing/token-status"
TTL = 60.0


@pytest.mark.parametrize(("change", "seen"), [
    ("UPDATE meta_tokens SET leads_access = 'blocked' WHERE tenant_id = :id",
     lambda data: data["leads_access"]["state"] == "blocked"),
    ("UPDATE meta_tokens SET status = 'revoked' WHERE tenant_id = :id",
     lambda data: data["status"] == "revoked")])
def test_sqlite_caches_no_status_so_a_write_elsewhere_is_read_at_once(make_app, sqlite_url, sandbox,
                                                                      change, seen):
    app = make_app(sqlite_url, STATUS_CACHE_SECONDS=TTL)  # the cache asked for...
    with app.app_context():
        assert statuscache.for_engine(db.engine, TTL) is None  # ...and not there: nothing listens
    tenant = add_tenant(app, "acme")
    client = app.test_client()
    AuthActions(client).login(tenant.admin_email)
    assert MetaFlow(client, sandbox).connect().status_code == 200

    def read() -> dict:
        return client.get(STATUS, headers=bearer(tenant.tenant_id, "member")).get_json()["data"]

    assert read()["connected"] is True and not seen(read())
    elsewhere = create_engine(sqlite_url)  # another process, or a hand-made fix in the database
    with elsewhere.begin() as conn:
        conn.execute(text(change), {"id": tenant.tenant_id})
    elsewhere.dispose()
    assert seen(read())
