"""The discovery's sizes are stored beside it, so a status read never loads the discovery: kept
equal on every write, and filled in for connections stored before the columns existed."""

from __future__ import annotations

import json
import uuid

import flask_migrate
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from tests.helpers.database import script_directory
from tests.helpers.users import bearer

BUSINESSES = [
    {"id": "b1", "name": "One", "ad_accounts": [{"id": "act_1"}, {"id": "act_2"}]},
    {"id": "b2", "name": "Two", "ad_accounts": [{"id": "act_2"}, {"id": "act_3"}]},  # act_2 shared
]
PERSONAL = [{"id": "act_3"}, {"id": "act_9"}]


def _row(tenant_id: int, **discovery) -> MetaConnection:
    return MetaConnection(tenant_id=tenant_id, token_ciphertext="x", key_id="k", **discovery)


def test_counts_follow_every_write_of_the_discovery(app, tenant, client):
    with app.app_context():
        row = _row(tenant.tenant_id, business_managers=BUSINESSES, personal_ad_accounts=PERSONAL)
        db.session.add(row)
        db.session.commit()
        assert (row.business_count, row.ad_account_count) == (2, 4)  # act_1, 2, 3, 9 once each
        row.business_managers = BUSINESSES[:1]
        db.session.commit()
        assert (row.business_count, row.ad_account_count) == (1, 4)  # act_1, 2, 3, 9
        row.personal_ad_accounts = []
        row.status = "connected"
        db.session.commit()
        assert (row.business_count, row.ad_account_count) == (1, 2)
    data = client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id)).get_json()["data"]
    assert (data["business_managers"], data["ad_accounts"]) == (1, 2)


def test_the_migration_counts_connections_stored_before_it(build_app, sqlite_url, keep_logging):
    app = build_app(sqlite_url)
    before = script_directory().get_revision("0006").down_revision
    with app.app_context():
        flask_migrate.upgrade(revision=before)
        db.session.execute(text("INSERT INTO tenants (id, name, slug, created_at) VALUES "
                                "(1, 'Acme', 'acme', CURRENT_TIMESTAMP), "
                                "(2, 'Bare', 'bare', CURRENT_TIMESTAMP)"))
        for tenant_id, businesses, personal in ((1, BUSINESSES, PERSONAL), (2, [], [])):
            db.session.execute(text(
                "INSERT INTO meta_tokens (tenant_id, access_token, key_id, token_type, scopes, "
                "declined_scopes, granular_scopes, business_managers, personal_ad_accounts, pages, "
                "status, connected_at, consecutive_failures, warnings_sent, created_at, updated_at, "
                "token_generation) VALUES (:tenant, 'x', 'k', 'USER', '[]', '[]', '[]', :b, :p, "
                "'[]', 'connected', CURRENT_TIMESTAMP, 0, '{}', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, 0)"),
                {"tenant": tenant_id, "b": json.dumps(businesses), "p": json.dumps(personal)})
        db.session.commit()
        flask_migrate.upgrade(revision="0006")
        counts = db.session.execute(text("SELECT tenant_id, business_count, ad_account_count "
                                         "FROM meta_tokens ORDER BY tenant_id")).all()
    assert [tuple(row) for row in counts] == [(1, 2, 4), (2, 0, 0)]


@pytest.mark.postgres
def test_migrations_and_create_all_both_install_the_status_triggers(build_app, make_app,
                                                                    postgres_url, keep_logging):
    """The same triggers, column for column, whether the schema came from the migrations or
    from the models; each downgrade puts back exactly what its revision found."""
    server = make_url(postgres_url)
    name = f"crm_meta_triggers_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        migrated = build_app(server.set(database=name).render_as_string(hide_password=False))
        with migrated.app_context():
            flask_migrate.upgrade(revision="0011")
        before_0012 = triggers(migrated)
        assert "leads_access" not in before_0012["crm_meta_status_tokens"]
        with migrated.app_context():
            flask_migrate.upgrade()
        created = make_app(postgres_url)  # the test schema: create_all
        assert triggers(migrated) == triggers(created)
        assert set(triggers(created)) == {
            "crm_meta_status_tenants", "crm_meta_status_tokens", "crm_meta_status_tokens_truncate"}
        assert "leads_access_at" in triggers(created)["crm_meta_status_tokens"]
        with migrated.app_context():
            flask_migrate.downgrade(revision="0011")
        assert triggers(migrated) == before_0012
        with migrated.app_context():
            flask_migrate.downgrade(revision="0005")
        assert triggers(migrated) == {}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def triggers(app) -> dict[str, str]:
    """The crm_meta triggers, each with its definition (events, columns, table, function)."""
    with app.app_context():
        found = dict(db.session.execute(text(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgname LIKE 'crm_meta_%'")).tuples().all())
        db.session.rollback()
        db.engine.dispose()
        return found
