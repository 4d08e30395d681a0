"""The audit trail: who, what, which tenant, when, from where, the outcome; never a secret."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_meta.infra.database import db
from crm_meta.models import audit
from tests.helpers.database import audit_events, raw_rows

SECRET = "EAAsecret-value-0123456789"


@pytest.mark.parametrize("key", [
    "access_token", "client_secret", "password", "code_verifier", "signed_request", "appsecret_proof",
    "Access_Token", "refresh_token", "META_APP_SECRET", "new_password",
])
def test_secret_looking_keys_are_dropped(app, tenant, key):
    with app.app_context():
        audit.record_now("test.action", actor="user:1", tenant_id=tenant.tenant_id,
                         details={key: SECRET, "account_id": "act_1"})
    [event] = audit_events(app, "test.action")
    assert event.details == {"account_id": "act_1"}
    assert SECRET not in repr(raw_rows(app, "audit_events"))


@pytest.mark.parametrize("details", [
    {"meta": {"access_token": SECRET}},
    {"responses": [{"client_secret": SECRET}]},
], ids=["dict", "list"])
def test_nested_secrets_are_dropped(app, tenant, details):
    with app.app_context():
        audit.record_now("test.nested", actor="user:1", tenant_id=tenant.tenant_id, details=details)
    assert SECRET not in repr(raw_rows(app, "audit_events"))


def test_long_strings_are_truncated(app, tenant):
    with app.app_context():
        audit.record_now("test.long", actor="x" * 500, tenant_id=tenant.tenant_id,
                         details={"note": "n" * 5000, "count": 7})
    [event] = audit_events(app, "test.long")
    assert len(event.details["note"]) <= 300
    assert event.details["note"] == "n" * len(event.details["note"])
    assert event.details["count"] == 7
    assert len(event.actor) <= 120


def test_events_carry_tenant_actor_action_outcome_ip_and_time(app, tenant):
    before = datetime.now(UTC)
    with app.app_context():
        audit.record_now("meta.connect", actor=audit.Actor("jwt:crm-9", "203.0.113.7"),
                         tenant_id=tenant.tenant_id, outcome="failure", details={"reason": "oauth_denied"})
    after = datetime.now(UTC)
    [event] = audit_events(app, "meta.connect")
    assert (event.tenant_id, event.actor, event.action, event.outcome, event.ip) == (
        tenant.tenant_id, "jwt:crm-9", "meta.connect", "failure", "203.0.113.7")
    assert event.details == {"reason": "oauth_denied"}
    assert event.created_at.tzinfo is not None
    assert before <= event.created_at <= after


def test_record_joins_the_callers_transaction_unless_asked_to_commit(app, tenant):
    with app.app_context():
        audit.record("test.rolled-back", actor="user:1", tenant_id=tenant.tenant_id)
        db.session.rollback()
        audit.record_now("test.committed", actor="user:1", tenant_id=tenant.tenant_id)
    assert audit_events(app, "test.rolled-back") == []
    assert len(audit_events(app, "test.committed")) == 1


def test_record_logs_without_details(app, tenant, caplog):
    with app.app_context(), caplog.at_level("INFO", logger="crm_meta.audit"):
        audit.record_now("test.log", actor="user:1", tenant_id=tenant.tenant_id,
                         details={"access_token": SECRET})
    assert any("test.log" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text


def test_login_and_logout_are_audited_from_the_request(app, client, auth, tenant):
    auth.login(tenant.admin_email, "wrong password 123")
    auth.login(tenant.admin_email)
    auth.logout()
    events = audit_events(app)
    assert [(e.action, e.outcome) for e in events] == [
        ("login", "failure"), ("login", "success"), ("logout", "success")]
    assert {e.ip for e in events} == {"127.0.0.1"}
    assert {e.tenant_id for e in events} == {tenant.tenant_id}
    assert "wrong password 123" not in repr(raw_rows(app, "audit_events"))


def test_disconnect_is_audited(app, client, tenant, meta_flow):
    assert meta_flow.connect().status_code == 200
    response = meta_flow.client.post("/crm/auth/meta/disconnect")
    assert response.status_code == 200
    [event] = audit_events(app, "meta.disconnect")
    assert event.tenant_id == tenant.tenant_id
    assert event.actor.startswith("user:")
    assert event.outcome == "success"
