"""The drop-in Graph endpoint: Graph's paths and conventions, a gateway token that alone names
the tenant, paging links a client follows as they are, and the same data as Meta with the real
token."""

from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from crm_meta.meta.graph import appsecret_proof
from meta_sandbox.tokens import token_id
from tests.helpers.database import raw_rows
from tests.helpers.graph import every_page
from tests.helpers.sandbox import ACCOUNT, MetaFlow
from tests.helpers.settings import APP_SECRET
from tests.helpers.users import PASSWORD

CAMPAIGNS = f"/graph/v25.0/{ACCOUNT}/campaigns"
INTERNAL = "/internal/meta/connections/{}/credentials"


def direct(sandbox, token: str, path: str, **params) -> requests.Response:
    """The same call straight to Meta (the sandbox) with the tenant's real token and proof."""
    return requests.get(f"{sandbox.url}/v25.0/{path}", timeout=10,
                        params={**params, "access_token": token,
                                "appsecret_proof": appsecret_proof(APP_SECRET, token)})


def test_a_proxy_only_service_is_handed_a_gateway_token_in_crm_ventas_names(
        app, client, connect, proxy_service, gateway_token, sandbox, row_of):
    acme = connect("acme")
    response = client.get(INTERNAL.format("acme") + "?format=crm-ventas", headers=proxy_service.headers)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    token = data["META_USER_LONG_TOKEN"]
    assert token.startswith("cmg_") and not token.startswith("EAA")
    assert data["META_AD_ACCOUNT_ID"] == ACCOUNT.removeprefix("act_")
    # Exactly what CRM Ventas' MarketingService.get_token_status does with it.
    days_left = (datetime.fromisoformat(data["META_TOKEN_EXPIRES_AT"]) - datetime.now()).days
    assert 55 <= days_left <= 60
    assert data["META_TOKEN_EXPIRES_AT"] == row_of(app, acme.tenant_id).expires_at.replace(
        tzinfo=None, microsecond=0).isoformat()
    # Stable: the same token on every read, and after the tenant reconnects (a new Meta token).
    assert gateway_token("acme") == token
    admin = app.test_client()
    admin.post("/login", data={"email": acme.admin_email, "password": PASSWORD})
    assert MetaFlow(admin, sandbox).connect().status_code == 200
    assert gateway_token("acme") == token
    # Hashed at rest: the table holds its SHA-256 and a nonce, never the token.
    [stored] = raw_rows(app, "gateway_tokens")
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored)
    # Without format=crm-ventas a proxy-only key still gets nothing.
    plain = client.get(INTERNAL.format("acme"), headers=proxy_service.headers)
    assert plain.status_code == 403 and plain.get_json()["error"]["code"] == "insufficient_scope"


def test_the_token_works_wherever_graph_clients_put_one_and_sees_what_meta_shows(
        app, client, connect, gateway_token, sandbox, stored_token):
    acme = connect("acme")
    token, real = gateway_token("acme"), stored_token(app, acme.tenant_id)
    fields = {"fields": "name,status,objective"}
    expected = direct(sandbox, real, f"{ACCOUNT}/campaigns", **fields).json()
    for how in ({"query_string": {**fields, "access_token": token}},
                {"query_string": fields, "headers": {"Authorization": f"Bearer {token}"}},
                {"query_string": fields, "headers": {"Authorization": f"OAuth {token}"}}):
        response = client.get(CAMPAIGNS, **how)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["data"] == expected["data"]
    # The call reached Meta with the tenant's own token, never the gateway's.
    assert sandbox.calls("/campaigns")[-1]["token_id"] == token_id(real)
    # POST: a form with access_token (Graph's convention), then JSON with the token in a header.
    created = client.post(CAMPAIGNS, data={"access_token": token, "name": "Invierno", "status": "PAUSED",
                                           "objective": "OUTCOME_LEADS", "special_ad_categories": "[]"})
    assert created.status_code == 200, created.get_data(as_text=True)
    campaign = created.get_json()["id"]
    renamed = client.post(f"/graph/v25.0/{campaign}", json={"name": "Invierno 2"},
                          headers={"Authorization": f"Bearer {token}"})
    assert renamed.get_json() == {"success": True}
    read = client.get(f"/graph/v25.0/{campaign}", query_string={"fields": "name", "access_token": token})
    assert read.get_json() == {"name": "Invierno 2", "id": campaign}
    gone = client.delete(f"/graph/v25.0/{campaign}", query_string={"access_token": token})
    assert gone.get_json() == {"success": True}


def test_one_credential_opens_exactly_one_tenant(app, client, connect, gateway_token, sandbox, stored_token):
    acme, beta = connect("acme"), connect("beta")
    for tenant in (acme, beta):
        token = gateway_token(tenant.slug)
        assert client.get(CAMPAIGNS, query_string={"access_token": token}).status_code == 200
        assert sandbox.calls("/campaigns")[-1]["token_id"] == token_id(stored_token(app, tenant.tenant_id))
    assert gateway_token("acme") != gateway_token("beta")
    # Two different tokens in one request name two tenants: refused, never guessed.
    both = client.get(CAMPAIGNS, query_string={"access_token": gateway_token("acme")},
                      headers={"Authorization": f"Bearer {gateway_token('beta')}"})
    assert both.status_code == 401 and both.get_json()["error"]["code"] == 190


def test_paging_links_carry_the_callers_credential_from_api_base_url(make_app, sandbox, gateway_token,
                                                                     connect, make_key, stored_token):
    app = make_app(API_BASE_URL="https://crm-meta.example.test")
    acme = connect("acme", app_=app)
    client = app.test_client()
    service = make_key("marketing", scopes=("graph:proxy",), app_=app)
    token = gateway_token("acme", service=service, app_=app)
    response = client.get(f"/graph/v25.0/{ACCOUNT}/insights", headers={"Host": "evil.example"},
                          query_string={"date_preset": "last_14d", "time_increment": "1", "limit": "5",
                                        "fields": "spend", "access_token": token})

    def check(link):
        assert f"{link.scheme}://{link.netloc}" == "https://crm-meta.example.test"  # never Host
        assert link.path == f"/graph/v25.0/{ACCOUNT}/insights"
        query = parse_qs(link.query)
        assert query["access_token"] == [token] and "appsecret_proof" not in query
        assert stored_token(app, acme.tenant_id) not in link.geturl()

    assert len(every_page(response, client.get, check)) == 14  # each link followed as it is, nothing added


def test_without_api_base_url_paging_links_lead_to_the_requests_own_origin(client, connect, gateway_token):
    connect("acme")
    token = gateway_token("acme")
    response = client.get(f"/graph/v25.0/{ACCOUNT}/insights", base_url="http://crm.internal:8080",
                          query_string={"date_preset": "last_14d", "time_increment": "1", "limit": "5",
                                        "fields": "spend", "access_token": token})
    link = urlsplit(response.get_json()["paging"]["next"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"http://crm.internal:8080/graph/v25.0/{ACCOUNT}/insights"
    assert parse_qs(link.query)["access_token"] == [token]


def test_the_existing_internal_proxy_keeps_working(client, connect, proxy_service):
    connect("acme")
    response = client.get(f"/internal/meta/connections/acme/graph/{ACCOUNT}/campaigns",
                          headers=proxy_service.headers, query_string={"fields": "name"})
    assert response.status_code == 200 and response.get_json()["data"]


@pytest.mark.postgres
def test_metas_token_errors_count_against_the_connection_on_postgresql(pg_app, connect, make_key,
                                                                       gateway_token, sandbox, row_of):
    """The gateway reads in autocommit (one round trip) and then records Meta's verdict in a
    real transaction: two 190s make the connection needs_reauth, and the gateway says so."""
    acme = connect("acme", app_=pg_app)
    service = make_key("marketing", scopes=("graph:proxy",), app_=pg_app)
    token = gateway_token("acme", service=service, app_=pg_app)
    client = pg_app.test_client()
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=190, error_subcode=460, count=2)
    for _ in range(2):
        metas = client.get(CAMPAIGNS, query_string={"access_token": token})
        assert metas.status_code == 400 and metas.get_json()["error"]["code"] == 190
    assert row_of(pg_app, acme.tenant_id).status == "needs_reauth"
    refused = client.get(CAMPAIGNS, query_string={"access_token": token})
    assert refused.status_code == 401 and refused.get_json()["error"]["error_subcode"] == 460
