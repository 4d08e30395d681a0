"""GET /internal/meta/connections/<tenant>/credentials: service keys only, usable connections only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, ServiceKey
from tests.helpers.sandbox import ACCOUNT
from tests.helpers.users import bearer

URL = "/internal/meta/connections/{}/credentials"


def test_a_service_reads_the_token_with_its_proof_and_facts(app, client, connect, service, sandbox,
                                                            stored_token):
    acme = connect("acme")
    response = client.get(URL.format("acme"), headers=service.headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()["data"]
    assert set(data) == {"access_token", "appsecret_proof", "token_type", "expires_at",
                         "data_access_expires_at", "scopes", "ad_account_id", "business_id", "status",
                         "page_tokens"}  # each Page's own token (issue 23)
    assert data["access_token"] == stored_token(app, acme.tenant_id)
    assert data["ad_account_id"] == ACCOUNT and data["status"] == "connected"
    assert data["token_type"] == "USER" and data["expires_at"].endswith("Z")
    # The token and proof work at Meta as they are.
    me = requests.get(f"{sandbox.url}/v25.0/me", timeout=10,
                      headers={"Authorization": f"Bearer {data['access_token']}"},
                      params={"appsecret_proof": data["appsecret_proof"]})
    assert me.status_code == 200, me.text
    by_id = client.get(URL.format(acme.tenant_id), headers=service.headers).get_json()["data"]
    assert by_id == data


def test_crm_ventas_format_uses_the_names_its_services_read(app, client, connect, service, row_of,
                                                            stored_token):
    acme = connect("acme")
    data = client.get(URL.format("acme") + "?format=crm-ventas", headers=service.headers).get_json()["data"]
    row = row_of(app, acme.tenant_id)
    # CRM Ventas keeps the account as bare digits and the expiry as naive UTC ISO.
    pages = {k: v for k, v in data.items() if k.startswith("META_PAGE_TOKEN_")}  # issue 23
    assert {k: v for k, v in data.items() if k not in pages} == {
        "META_USER_LONG_TOKEN": stored_token(app, acme.tenant_id),
        "META_AD_ACCOUNT_ID": ACCOUNT.removeprefix("act_"),
        "META_TOKEN_EXPIRES_AT": row.expires_at.replace(tzinfo=None, microsecond=0).isoformat()}
    assert all(v.startswith("EAA") and v != data["META_USER_LONG_TOKEN"] for v in pages.values())
    bad = client.get(URL.format("acme") + "?format=xml", headers=service.headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_format"


def test_every_read_is_audited_without_the_token(app, client, connect, service, set_status, stored_token):
    acme = connect("acme")
    beta = connect("beta")
    set_status(app, beta.tenant_id, status="needs_reauth")
    client.get(URL.format("acme"), headers=service.headers)
    client.get(URL.format("beta"), headers=service.headers)
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).filter_by(action="meta.credentials.read")
                                    .order_by(AuditEvent.id)).all()
        seen = [(e.tenant_id, e.actor, e.outcome, e.details.get("service"), e.details.get("reason"))
                for e in events]
        text = repr([(e.details, e.actor) for e in events])
    assert seen == [(acme.tenant_id, "service:marketing", "success", "marketing", None),
                    (beta.tenant_id, "service:marketing", "refused", "marketing", "needs_reauth")]
    assert stored_token(app, acme.tenant_id) not in text


def test_uses_record_when_the_key_was_last_used_to_the_minute(app, client, connect, service):
    connect("acme")

    def last_used():
        with app.app_context():
            return db.session.scalar(db.select(ServiceKey.last_used_at))

    assert last_used() is None
    client.get(URL.format("acme")[:-len("credentials")] + "graph/me", headers=service.headers)
    forged = service.key[:-1] + ("A" if service.key[-1] != "A" else "B")
    client.get(URL.format("acme"), headers={"Authorization": f"Bearer {forged}"})
    assert last_used() is None  # refused calls (a path off the allow-list, a forged key) leave no mark
    client.get(URL.format("acme"), headers=service.headers)
    first = last_used()
    assert first is not None
    client.get(URL.format("acme"), headers=service.headers)
    assert last_used() == first  # within the minute: no write per call
    with app.app_context():
        db.session.execute(db.update(ServiceKey).values(last_used_at=first - timedelta(minutes=2)))
        db.session.commit()
    client.get(URL.format("acme"), headers=service.headers)
    assert last_used() > first


@pytest.mark.parametrize(("status", "columns"), [
    ("needs_reauth", {"status": "needs_reauth"}),
    ("revoked", {"status": "revoked"}),
    ("expired", {"status": "expired"}),
    ("expired", {"expires_at": "past"}),
])
def test_an_unusable_connection_is_refused_with_its_reason(app, client, connect, service, status, columns,
                                                           row_of, set_status):
    connect("acme")
    beta = connect("beta")
    if columns.get("expires_at") == "past":
        columns = {"expires_at": row_of(app, beta.tenant_id).connected_at - timedelta(days=1)}
    set_status(app, beta.tenant_id, **columns)
    refused = client.get(URL.format("beta"), headers=service.headers)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == status
    assert refused.headers["Cache-Control"] == "no-store"
    assert client.get(URL.format("acme"), headers=service.headers).status_code == 200


def test_a_tenant_without_a_connection_or_unknown_is_refused(app, client, make_tenant, service):
    make_tenant("empty")
    none = client.get(URL.format("empty"), headers=service.headers)
    assert none.status_code == 409 and none.get_json()["error"]["code"] == "not_connected"
    refs = ("ghost", "999999", "99999999999999999999", "9" * 5000, "x" * 300, "²")
    for ref in refs:
        unknown = client.get(URL.format(ref), headers=service.headers)
        assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    with app.app_context():
        reasons = [e.details["reason"] for e in db.session.scalars(
            db.select(AuditEvent).filter_by(action="meta.credentials.read", outcome="refused"))]
    assert reasons == ["not_connected"] + ["unknown_tenant"] * len(refs)


def test_an_all_digit_reference_is_always_an_id(app, client, connect, service):
    acme = connect("acme")
    other = str(acme.tenant_id + 1000)
    assert client.get(URL.format(other), headers=service.headers).status_code == 404


# -- who may call ------------------------------------------------------------------------------
PATHS = ["/internal/meta/connections/acme/credentials",
         "/internal/meta/connections/acme/graph/act_301000001000001/campaigns"]


def reason(response) -> str:
    """Our code for a refusal: the envelope's on /credentials, `error_data.reason` of the Graph
    error body the proxy answers with (issue 19)."""
    body = response.get_json()
    return body["error"]["code"] if body.get("success") is False else body["error"]["error_data"]["reason"]


@pytest.mark.parametrize("path", PATHS)
def test_no_key_or_a_users_credentials_are_refused(app, client, connect, auth, path):
    acme = connect("acme")
    cases = {
        "nothing": {},
        "user jwt": bearer(acme.tenant_id, role="admin"),
        "basic": {"Authorization": "Basic Zm9vOmJhcg=="},
    }
    for name, headers in cases.items():
        response = client.get(path, headers=headers)
        assert response.status_code == 401, name
        assert reason(response) == "service_key_required", name
    auth.login(acme.admin_email)  # a logged-in admin's session cookie is not enough either
    response = client.get(path)
    assert response.status_code == 401 and reason(response) == "service_key_required"


@pytest.mark.parametrize("path", PATHS)
def test_a_wrong_or_revoked_key_is_refused(app, client, connect, make_key, path):
    connect("acme")
    live = make_key("marketing")
    forged = "cms_" + live.key[4:-1] + ("A" if live.key[-1] != "A" else "B")
    for key in (forged, "cms_short", "cms_" + "x" * 43):
        response = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401 and reason(response) == "invalid_service_key"
    runner = app.test_cli_runner()
    assert runner.invoke(args=["services", "revoke", "marketing"]).exit_code == 0
    response = client.get(path, headers=live.headers)
    assert response.status_code == 401 and reason(response) == "service_key_revoked"


def test_each_route_needs_its_own_scope(client, connect, make_key):
    connect("acme")
    reader = make_key("reader", scopes=("credentials:read",))
    caller = make_key("caller", scopes=("graph:proxy",))
    denied = client.get(PATHS[1], headers=reader.headers)
    assert denied.status_code == 403 and reason(denied) == "insufficient_scope"
    denied = client.get(PATHS[0], headers=caller.headers)
    assert denied.status_code == 403 and reason(denied) == "insufficient_scope"
    assert client.get(PATHS[0], headers=reader.headers).status_code == 200
    assert client.get(PATHS[1], headers=caller.headers).status_code == 200
