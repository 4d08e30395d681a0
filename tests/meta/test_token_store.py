"""Tokens at rest: the raw database never holds one in clear; ciphertexts are tenant-bound."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.meta.store import TokenStore
from crm_meta.models import MetaConnection
from crm_meta.runtime import runtime
from tests.helpers.database import raw_rows

TOKEN = "EAAplaintext-token-that-must-never-be-stored-0123456789"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request, make_app):
    if request.param == "postgres":
        return make_app(database_url=request.getfixturevalue("postgres_url"))
    return make_app()


def store_for(app) -> TokenStore:
    return TokenStore(app.extensions["crm_meta"].cipher)


def put(app, tenant_id: int, token: str = TOKEN) -> None:
    with app.app_context():
        row = MetaConnection(tenant_id=tenant_id, meta_user_id=f"meta-{tenant_id}", scopes=["ads_management"])
        store_for(app).write(row, token)
        db.session.add(row)
        db.session.commit()


def read(app, tenant_id: int) -> str:
    with app.app_context():
        store = store_for(app)
        return store.read(store.for_tenant(tenant_id))


def test_raw_database_never_holds_the_token(db_app, make_tenant):
    acme = make_tenant("acme", app_=db_app)
    put(db_app, acme.tenant_id)
    [row] = raw_rows(db_app, "meta_tokens")
    for column, value in row.items():
        assert TOKEN not in (value or ""), column
    kid = db_app.extensions["crm_meta"].cipher.current.kid
    assert row["access_token"].startswith(f"v1.{kid}.")
    assert row["key_id"] == kid
    assert read(db_app, acme.tenant_id) == TOKEN


def test_same_token_encrypts_differently_each_time(db_app, make_tenant):
    acme = make_tenant("acme", app_=db_app)
    other = make_tenant("other", app_=db_app)
    put(db_app, acme.tenant_id)
    put(db_app, other.tenant_id)
    first, second = (r["access_token"] for r in raw_rows(db_app, "meta_tokens"))
    assert first != second


def test_ciphertext_copied_to_another_tenant_does_not_open(db_app, make_tenant):
    acme = make_tenant("acme", app_=db_app)
    other = make_tenant("other", app_=db_app)
    put(db_app, acme.tenant_id)
    put(db_app, other.tenant_id, "EAAother-tenant-token-0123456789")
    with db_app.app_context():
        db.session.execute(text(
            "UPDATE meta_tokens SET access_token = "
            "(SELECT access_token FROM meta_tokens WHERE tenant_id = :src) WHERE tenant_id = :dst"),
            {"src": acme.tenant_id, "dst": other.tenant_id})
        db.session.commit()
    with pytest.raises(CryptoError) as excinfo:
        read(db_app, other.tenant_id)
    assert TOKEN not in str(excinfo.value)
    assert read(db_app, acme.tenant_id) == TOKEN


def test_tampered_ciphertext_does_not_open(app, make_tenant):
    acme = make_tenant("acme")
    put(app, acme.tenant_id)
    with app.app_context():
        row = store_for(app).for_tenant(acme.tenant_id)
        head, blob = row.token_ciphertext.rsplit(".", 1)
        row.token_ciphertext = f"{head}.{blob[:-4]}{'AAAA' if blob[-4:] != 'AAAA' else 'BBBB'}"
        db.session.commit()
    with pytest.raises(CryptoError):
        read(app, acme.tenant_id)


def test_rotate_reencrypts_every_token_in_batches(db_app, make_tenant, build_app):
    slugs = ["t1", "t2", "t3"]
    ids = [make_tenant(slug, app_=db_app).tenant_id for slug in slugs]
    for tenant_id in ids:
        put(db_app, tenant_id, f"EAAtoken-of-{tenant_id}-0123456789")
    old_kid = db_app.extensions["crm_meta"].cipher.current.kid
    url = db_app.config["SQLALCHEMY_DATABASE_URI"]
    new = build_app(url, ENCRYPTION_KEY="a-brand-new-key-0123456789",
                    ENCRYPTION_KEYS_PREVIOUS=[db_app.config["ENCRYPTION_KEY"]])
    with new.app_context():
        store = TokenStore(runtime().cipher)
        assert store.rotate(batch_size=2) == 3
        assert store.rotate(batch_size=2) == 0
        new_kid = store.cipher.current.kid
    assert new_kid != old_kid
    rows = raw_rows(new, "meta_tokens")
    assert {r["key_id"] for r in rows} == {new_kid}
    assert all(r["access_token"].startswith(f"v1.{new_kid}.") for r in rows)
    for tenant_id in ids:
        assert read(new, tenant_id) == f"EAAtoken-of-{tenant_id}-0123456789"


def test_a_real_connection_leaves_no_token_in_clear_anywhere(app, meta_flow, tenant):
    response = meta_flow.connect()
    assert response.status_code == 200, response.get_json()
    token = read(app, tenant.tenant_id)
    assert token.startswith("EAA")
    assert token not in response.get_data(as_text=True)
    for table in ("meta_tokens", "oauth_states", "audit_events", "users", "tenants"):
        for row in raw_rows(app, table):
            assert token not in repr(row), table
    status = meta_flow.client.get("/crm/marketing/token-status")
    assert token not in status.get_data(as_text=True)
