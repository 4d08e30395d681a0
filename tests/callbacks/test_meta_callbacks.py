"""Meta's deauthorize and data-deletion callbacks."""

import re

import pytest

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, MetaConnection
from tests.helpers.sandbox import encode, sign
from tests.helpers.settings import APP_SECRET


@pytest.fixture
def connected_user(app, meta_flow):
    assert meta_flow.connect().status_code == 200
    with app.app_context():
        return db.session.scalar(db.select(MetaConnection.meta_user_id))


def test_deauthorize_drops_that_users_connections(app, client, sandbox, connected_user):
    signed = sandbox.post("signed-request", user_id=connected_user)["signed_request"]
    response = client.post("/crm/meta/deauthorize", data={"signed_request": signed})
    assert response.status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is None
        event = db.session.scalar(db.select(AuditEvent).filter_by(action="meta.deauthorize"))
        assert event.actor == "meta" and event.tenant_id is not None


def test_data_deletion_deletes_and_gives_a_status_page(app, client, sandbox, connected_user):
    signed = sandbox.post("signed-request", user_id=connected_user)["signed_request"]
    response = client.post("/crm/meta/data-deletion", data={"signed_request": signed})
    assert response.status_code == 200
    body = response.get_json()
    assert re.fullmatch(r"[0-9a-f]{16}", body["confirmation_code"])
    assert body["url"].endswith(f"/crm/meta/data-deletion/{body['confirmation_code']}")
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is None
        events = db.session.scalars(db.select(AuditEvent)).all()
        assert {"meta.connect", "meta.data_deletion"} <= {e.action for e in events}
        assert all(connected_user not in str(e.details) for e in events)  # forgotten everywhere
    page = client.get(f"/crm/meta/data-deletion/{body['confirmation_code']}",
                      headers={"Accept": "text/html"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert body["confirmation_code"] in text and connected_user not in text
    assert client.get("/crm/meta/data-deletion/unknown0code",
                      headers={"Accept": "text/html"}).status_code == 404


@pytest.mark.parametrize("signed", ["", "garbage", "a.b", "x" * 5000])
@pytest.mark.parametrize("path", ["/crm/meta/deauthorize", "/crm/meta/data-deletion"])
def test_unverified_requests_are_refused(app, client, connected_user, path, signed):
    response = client.post(path, data={"signed_request": signed})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signed_request"
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is not None


def test_a_request_signed_with_another_secret_is_refused(app, client, connected_user):
    forged = sign({"algorithm": "HMAC-SHA256", "user_id": connected_user}, "not-our-secret")
    assert client.post("/crm/meta/deauthorize", data={"signed_request": forged}).status_code == 400


@pytest.mark.parametrize("path", ["/crm/meta/deauthorize", "/crm/meta/data-deletion"])
def test_an_unsigned_deeply_nested_payload_is_a_clean_400(app, client, path):
    """Before the fix the payload was parsed before the signature: json recursed into a 500."""
    nested = encode(b"[" * 3000)[:4000]
    response = client.post(path, data={"signed_request": encode(b"x" * 32) + "." + nested})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_signed_request"


def test_a_signed_request_without_issued_at_is_refused(app, client, connected_user):
    undated = sign({"algorithm": "HMAC-SHA256", "user_id": connected_user}, APP_SECRET)
    response = client.post("/crm/meta/deauthorize", data={"signed_request": undated})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection)) is not None
