"""`flask services create / list / revoke`: a key shown once, only its hash stored."""

from __future__ import annotations

import hashlib

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, ServiceKey


def test_create_prints_the_key_once_and_stores_only_its_hash(app, runner):
    result = runner.invoke(args=["services", "create", "marketing", "--scope", "credentials:read",
                                 "--scope", "graph:proxy"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    assert key.startswith("cms_") and len(key) == 47
    with app.app_context():
        row = db.session.scalar(db.select(ServiceKey))
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.prefix == key[:12] and row.scopes == ["credentials:read", "graph:proxy"]
        columns = [getattr(row, c.key) for c in ServiceKey.__table__.columns]
        assert key not in repr(columns)
        assert db.session.scalar(db.select(AuditEvent.action)) == "service_key.create"
    listing = runner.invoke(args=["services", "list"])
    assert "marketing" in listing.output and key[:12] in listing.output and key not in listing.output
    assert "active" in listing.output and "last used never" in listing.output


def test_a_second_key_for_the_same_service_needs_a_revoke_first(runner):
    args = ["services", "create", "leads", "--scope", "graph:proxy"]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=args)
    assert again.exit_code != 0 and "revoke it first" in again.output
    assert runner.invoke(args=["services", "revoke", "leads"]).exit_code == 0
    assert "revoked" in runner.invoke(args=["services", "list"]).output
    assert runner.invoke(args=args).exit_code == 0  # rotation: a new key for the same service


def test_bad_names_scopes_and_unknown_services_are_refused(runner):
    assert runner.invoke(args=["services", "create", "marketing"]).exit_code != 0  # no scope
    bad_scope = runner.invoke(args=["services", "create", "marketing", "--scope", "admin"])
    assert bad_scope.exit_code != 0
    bad_name = runner.invoke(args=["services", "create", "Marketing Service", "--scope", "graph:proxy"])
    assert bad_name.exit_code != 0 and "NAME" in bad_name.output
    missing = runner.invoke(args=["services", "revoke", "nobody"])
    assert missing.exit_code != 0 and "no active key" in missing.output
    assert "no service keys" in runner.invoke(args=["services", "list"]).output
