"""One tenant can never read, select or disconnect another tenant's connection."""

import pytest

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from meta_sandbox.fixtures import USER_WITHOUT_BUSINESSES
from tests.helpers.sandbox import MetaFlow
from tests.helpers.users import PASSWORD, bearer


@pytest.fixture
def two_tenants(app, make_tenant, sandbox):
    """Tenant A connected as the user with businesses, tenant B as the user without."""
    a, b = make_tenant("alpha"), make_tenant("beta")
    clients = {}
    for tenant, user_id in ((a, None), (b, USER_WITHOUT_BUSINESSES)):
        client = app.test_client()
        client.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
        data = MetaFlow(client, sandbox).connect(user_id=user_id).get_json()["data"]
        clients[tenant.slug] = (tenant, client, data)
    return clients


def callers(two_tenants, slug):
    """The same tenant's admin by session and by JWT."""
    tenant, client, _data = two_tenants[slug]
    jwt_client = client.application.test_client()
    yield "session", client, {}
    yield "jwt", jwt_client, bearer(tenant.tenant_id, role="admin")


@pytest.mark.parametrize("via", ["session", "jwt"])
def test_b_sees_only_its_own_assets(two_tenants, via):
    a_data = two_tenants["alpha"][2]
    _, client, headers = next(c for c in callers(two_tenants, "beta") if c[0] == via)
    portfolios = client.get("/crm/marketing/meta-portfolios", headers=headers).get_json()["data"]
    assert portfolios == []
    accounts = client.get("/crm/marketing/meta-accounts", headers=headers).get_json()["data"]
    a_ids = {acc["id"] for b in a_data["business_managers"] for acc in b["ad_accounts"]}
    assert accounts and not a_ids & {acc["id"] for acc in accounts}
    business = a_data["business_managers"][0]
    response = client.get(f"/crm/marketing/meta-accounts?portfolio_id={business['id']}", headers=headers)
    assert response.status_code == 404
    response = client.post("/crm/marketing/connect", headers=headers, json={
        "account_id": business["ad_accounts"][0]["id"], "business_id": business["id"]})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "unknown_asset"


@pytest.mark.parametrize("via", ["session", "jwt"])
def test_b_disconnecting_leaves_a_alone(app, two_tenants, via):
    a = two_tenants["alpha"][0]
    _, client, headers = next(c for c in callers(two_tenants, "beta") if c[0] == via)
    assert client.post("/crm/auth/meta/disconnect", headers=headers).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=a.tenant_id)) is not None
    status = two_tenants["alpha"][1].get("/crm/marketing/token-status").get_json()["data"]
    assert status["connected"] is True


def test_a_jwt_cannot_be_pointed_at_another_tenant(two_tenants):
    a, b = two_tenants["alpha"][0], two_tenants["beta"][0]
    client = two_tenants["alpha"][1].application.test_client()
    headers = bearer(a.tenant_id, **{"X-Tenant-ID": str(b.tenant_id)})
    for path in ("/crm/marketing/token-status", "/crm/marketing/meta-portfolios",
                 "/crm/auth/meta/test-connection", "/crm/auth/meta/debug/token"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "tenant_mismatch"
    response = client.post("/crm/auth/meta/disconnect", headers=headers)
    assert response.status_code == 403


def test_each_tenant_reads_its_own_status(two_tenants):
    names = set()
    for slug in ("alpha", "beta"):
        tenant, client, _ = two_tenants[slug]
        names.add(client.get("/crm/auth/meta/test-connection").get_json()["data"]["user_name"])
    assert len(names) == 2


def test_revoking_one_tenant_keeps_a_shared_meta_grant(app, make_tenant, sandbox):
    """Two tenants connected by the same Meta user: one disconnect must not revoke the other."""
    clients = []
    for slug in ("one", "two"):
        tenant = make_tenant(slug)
        client = app.test_client()
        client.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
        assert MetaFlow(client, sandbox).connect().status_code == 200
        clients.append(client)
    data = clients[0].post("/crm/auth/meta/disconnect").get_json()["data"]
    assert data["revoked_at_meta"] is False
    assert clients[1].get("/crm/auth/meta/test-connection").get_json()["data"]["valid"] is True
