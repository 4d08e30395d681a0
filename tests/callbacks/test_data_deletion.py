"""Data deletion after deauthorize: Meta's usual order still leaves no trace of the Meta user."""

from __future__ import annotations

import pytest

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, MetaConnection


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request, make_app):
    """The same flow on both databases: the scrub is a JSON query on `audit_events.details`."""
    if request.param == "postgres":
        return make_app(database_url=request.getfixturevalue("postgres_url"))
    return make_app()


def audit_trail(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(e.action, e.details) for e in db.session.scalars(
            db.select(AuditEvent).order_by(AuditEvent.id))]


def test_data_deletion_after_deauthorize_scrubs_every_event_naming_the_user(
        app, client, sandbox, meta_flow, make_tenant):
    assert meta_flow.connect().status_code == 200
    with app.app_context():
        meta_user = db.session.scalar(db.select(MetaConnection.meta_user_id))
    # A second tenant connected by the same Meta user earlier, since disconnected: its connect
    # event names the user too, though no row links the user to that tenant any more.
    other = make_tenant("globex")
    with app.app_context():
        db.session.add(AuditEvent(tenant_id=other.tenant_id, actor="u", action="meta.connect",
                                  outcome="success", details={"meta_user_id": meta_user, "x": 1}))
        db.session.add(AuditEvent(tenant_id=other.tenant_id, actor="u", action="meta.connect",
                                  outcome="success", details={"meta_user_id": "999", "x": 2}))
        db.session.commit()

    deauth = sandbox.post("signed-request", user_id=meta_user)["signed_request"]
    assert client.post("/crm/meta/deauthorize", data={"signed_request": deauth}).status_code == 200
    assert any(details.get("meta_user_id") == meta_user for _, details in audit_trail(app))

    deletion = sandbox.post("signed-request", user_id=meta_user)["signed_request"]
    response = client.post("/crm/meta/data-deletion", data={"signed_request": deletion})
    assert response.status_code == 200

    trail = audit_trail(app)
    assert not [event for event in trail if meta_user in str(event[1])], trail
    actions = [action for action, _ in trail]
    assert actions.count("meta.connect") == 3 and "meta.deauthorize" in actions  # events stay
    assert {"meta_user_id": "999", "x": 2} in [details for _, details in trail]  # others untouched
    assert {"x": 1} in [details for _, details in trail]
    code = response.get_json()["confirmation_code"]
    status = client.get(f"/crm/meta/data-deletion/{code}", headers={"Accept": "application/json"})
    assert status.get_json()["status"] == "completed"
