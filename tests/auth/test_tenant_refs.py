"""Tenant refs: a number always means a tenant id, because no slug is digits only."""

from __future__ import annotations

import flask_migrate
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crm_meta.infra.database import db
from crm_meta.models import Tenant
from tests.helpers.cli import invoke, ok, refused
from tests.helpers.database import script_directory, tenants
from tests.helpers.users import bearer

STATUS = "/crm/marketing/token-status"


@pytest.mark.parametrize("slug", ["2", "0", "007", "1234567890"])
def test_tenants_create_refuses_a_slug_of_digits_only(app, slug):
    refused(invoke(app, ["tenants", "create", "Acme", "--slug", slug]), "digits only")
    assert tenants(app) == []


def test_a_name_of_digits_only_needs_a_slug(app):
    refused(invoke(app, ["tenants", "create", "2024"]), "digits only", "--slug")
    ok(invoke(app, ["tenants", "create", "2024", "--slug", "t-2024"]))
    assert tenants(app) == [("2024", "t-2024")]


@pytest.mark.parametrize("slug", ["2a", "a2", "2-2", "t-2"])
def test_slugs_with_a_letter_or_dash_are_fine(app, slug):
    ok(invoke(app, ["tenants", "create", "Acme", "--slug", slug]))


def test_the_database_refuses_a_numeric_slug_too(app):
    with app.app_context():
        db.session.add(Tenant(name="Two", slug="2"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_a_digit_string_in_the_token_or_header_is_always_an_id(client, make_tenant):
    first = make_tenant("acme")
    second = make_tenant("t-1")  # a slug that mentions the other's id, harmlessly
    for ref in (first.tenant_id, str(first.tenant_id)):
        headers = bearer(ref, **{"X-Tenant-ID": str(first.tenant_id)})
        assert client.get(STATUS, headers=headers).status_code == 200
    headers = bearer(second.tenant_id, **{"X-Tenant-ID": str(first.tenant_id)})
    assert client.get(STATUS, headers=headers).status_code == 403


@pytest.fixture
def migrated_to_before(build_app, sqlite_url, keep_logging):
    """A database at the revision before the slug check."""
    app = build_app(sqlite_url)
    before = script_directory().get_revision("0005").down_revision
    with app.app_context():
        flask_migrate.upgrade(revision=before)
    return app


def test_the_migration_refuses_existing_numeric_slugs_and_names_them(migrated_to_before, capfd):
    app = migrated_to_before
    with app.app_context():
        db.session.execute(text("INSERT INTO tenants (name, slug, created_at) VALUES "
                                "('Two', '2', CURRENT_TIMESTAMP), ('Acme', 'acme', CURRENT_TIMESTAMP)"))
        db.session.commit()
        with pytest.raises(SystemExit):  # `flask db upgrade` exits non-zero with the message
            flask_migrate.upgrade(revision="0005")
        assert "id 1 slug '2'" in capfd.readouterr().err
        db.session.execute(text("UPDATE tenants SET slug = 't-2' WHERE slug = '2'"))
        db.session.commit()
        flask_migrate.upgrade(revision="0005")
        with pytest.raises(IntegrityError):
            db.session.execute(text("UPDATE tenants SET slug = '3' WHERE slug = 'acme'"))
        db.session.rollback()


# -- one rule for claims, headers and paths (review 2) -------------------------------------------
@pytest.mark.parametrize("written", ["{id}", "0{id}", "00{id}"])
def test_a_reference_reads_the_same_in_a_claim_a_header_and_a_path(app, client, make_tenant,
                                                                   written):
    """`tenant_id: "01"` in a JWT was tenant 1 while `X-Tenant-ID: 01` was a mismatch."""
    from crm_meta.internal import keys

    acme = make_tenant("acme")
    ref = written.format(id=acme.tenant_id)
    as_claim = client.get(STATUS, headers=bearer(ref))
    as_header = client.get(STATUS, headers=bearer(acme.tenant_id, **{"X-Tenant-ID": ref}))
    both = client.get(STATUS, headers=bearer(ref, **{"X-Tenant-ID": ref}))
    assert as_claim.status_code == as_header.status_code == both.status_code == 200
    with app.app_context():
        key = keys.create("marketing", ["credentials:read"]).key
    by_path = client.get(f"/internal/meta/connections/{ref}/credentials",
                         headers={"Authorization": f"Bearer {key}"})
    assert by_path.status_code == 409 and by_path.get_json()["error"]["code"] == "not_connected"


@pytest.mark.parametrize("value, expected", [
    (1, 1), ("1", 1), ("01", 1), ("0000000001", 1), ("acme", "acme"), ("t-1", "t-1"),
    (0, None), ("0", None), (-1, None), (2**31, None), ("9" * 30, None), ("Acme", None),
    ("²", None), ("", None), (True, None), (" 1", None),
])
def test_the_one_rule(value, expected):
    from crm_meta.auth.tenancy import reference

    assert reference(value) == expected and type(reference(value)) is type(expected)
