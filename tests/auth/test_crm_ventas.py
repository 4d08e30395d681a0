"""CRM Ventas as it is: its login token, its cookie and headers, its roles, from its origin.

Every endpoint the CRM's `marketing.ts` client calls is driven three ways: our minted token,
the CRM's own login token as a Bearer header, and that token in the CRM's `access_token` cookie
(the last two with the `X-Admin-Token` and `X-Tenant-ID` headers the CRM's axios sends).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import jwt
import pytest

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent
from tests.helpers.responses import assert_envelope
from tests.helpers.settings import JWT_SECRET
from tests.helpers.users import bearer

CRM_ORIGIN = "https://crm.example.com"
ADMIN_TOKEN = "crm-admin-token-0123456789abcdef"
USER_ID = "42"


def crm_login_token(tenant_id: int, role: str = "ceo", user_id: str = USER_ID, **changes) -> str:
    """A token minted exactly as CRM Ventas mints one at login: no `sub`, no `iat`."""
    claims = {"user_id": user_id, "email": "ana@acme.test", "role": role, "tenant_id": tenant_id,
              "niche_type": "crm_sales", "exp": datetime.now(UTC) + timedelta(days=7)}
    claims.update(changes)
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture
def crm_app(make_app):
    """The app configured the way it runs next to CRM Ventas."""
    return make_app(CRM_ADMIN_TOKEN=ADMIN_TOKEN, CRM_ORIGINS=[CRM_ORIGIN], FRONTEND_URL=CRM_ORIGIN)


def crm_headers(tenant_id: int, **extra) -> dict:
    """What the CRM's axios instance adds to every call from its own origin."""
    return {"X-Admin-Token": ADMIN_TOKEN, "X-Tenant-ID": str(tenant_id), "Origin": CRM_ORIGIN,
            "Sec-Fetch-Site": "cross-site", **extra}


class Caller:
    """One way of calling the API: a client and the headers of each call."""

    def __init__(self, way: str, make_app, crm_app, make_tenant):
        self.way = way
        self.app = make_app() if way == "minted" else crm_app
        self.tenant = make_tenant("acme", app_=self.app)
        self.client = self.app.test_client()
        tid = self.tenant.tenant_id
        if way == "minted":
            self.headers = bearer(tid, role="admin", sub=USER_ID)
        elif way == "crm-bearer":
            self.headers = crm_headers(tid, Authorization=f"Bearer {crm_login_token(tid)}")
        else:  # the HttpOnly cookie CRM Ventas' backend set at login, sent with credentials
            self.client.set_cookie("access_token", crm_login_token(tid))
            self.headers = crm_headers(tid)

    def get(self, path: str, **query):
        return self.client.get(path, query_string=query, headers=self.headers)

    def post(self, path: str, json=None):
        return self.client.post(path, json=json, headers=self.headers)


def ok(response) -> dict | list:
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


@pytest.mark.parametrize("way", ["minted", "crm-bearer", "crm-cookie"])
def test_every_marketing_ts_endpoint(way, make_app, crm_app, make_tenant, sandbox):
    caller = Caller(way, make_app, crm_app, make_tenant)
    # token status, before anything
    assert ok(caller.get("/crm/marketing/token-status"))["status"] == "disconnected"
    # auth URL, then Meta's consent and Meta's redirect back, as the browser follows it
    started = ok(caller.get("/crm/auth/meta/url"))
    location = sandbox.consent(started["auth_url"])
    parts = urlsplit(location)
    if way == "minted":
        callback = caller.client.get(f"{parts.path}?{parts.query}",
                                     headers={"Accept": "application/json"})
        assert ok(callback)["connected"] is True
    else:  # a top-level navigation: no header of the CRM's; back to the CRM with the outcome
        callback = caller.client.get(f"{parts.path}?{parts.query}", headers={"Accept": "text/html"})
        assert callback.status_code == 302
        assert callback.headers["Location"] == f"{CRM_ORIGIN}/crm/marketing?success=connected"
    assert ok(caller.get("/crm/marketing/token-status"))["status"] == "connected"
    # portfolios, accounts with and without a portfolio
    portfolios = ok(caller.get("/crm/marketing/meta-portfolios"))
    business = portfolios[0]
    everything = ok(caller.get("/crm/marketing/meta-accounts"))
    in_business = ok(caller.get("/crm/marketing/meta-accounts", portfolio_id=business["id"]))
    assert in_business == business["ad_accounts"]
    assert {a["id"] for a in in_business} <= {a["id"] for a in everything}
    # connect (choose the ad account)
    account = in_business[0]
    chosen = ok(caller.post("/crm/marketing/connect", json={"account_id": account["account_id"],
                                                            "business_id": business["id"]}))
    assert chosen["account_id"] == account["id"]
    # test connection, debug token
    assert ok(caller.get("/crm/auth/meta/test-connection"))["valid"] is True
    assert ok(caller.get("/crm/auth/meta/debug/token"))["is_valid"] is True
    # disconnect
    assert ok(caller.post("/crm/auth/meta/disconnect"))["disconnected"] is True
    assert ok(caller.get("/crm/marketing/token-status"))["status"] == "disconnected"
    with caller.app.app_context():
        actors = {e.actor for e in db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.action.in_(["meta.connect", "meta.select_account", "meta.disconnect"])))}
    assert actors == {f"jwt:{USER_ID}"}


@pytest.mark.parametrize("way", ["crm-bearer", "crm-cookie"])
def test_answers_carry_cors_headers_for_the_crm_origin(way, make_app, crm_app, make_tenant):
    caller = Caller(way, make_app, crm_app, make_tenant)
    response = caller.get("/crm/marketing/token-status")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CRM_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]


# -- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize("way", ["crm-bearer", "crm-cookie"])
@pytest.mark.parametrize("admin_token, code", [
    (None, "admin_token_required"), ("", "admin_token_required"),
    ("wrong-token", "invalid_admin_token"), (ADMIN_TOKEN + "x", "invalid_admin_token"),
    ("tokén-ñ", "invalid_admin_token"),
])
def test_a_missing_or_wrong_admin_token_is_a_401(way, admin_token, code, make_app, crm_app,
                                                  make_tenant):
    caller = Caller(way, make_app, crm_app, make_tenant)
    headers = {k: v for k, v in caller.headers.items() if k != "X-Admin-Token"}
    if admin_token is not None:
        headers["X-Admin-Token"] = admin_token
    for method, path in [("GET", "/crm/marketing/token-status"), ("GET", "/crm/auth/meta/url"),
                         ("POST", "/crm/auth/meta/disconnect")]:
        response = caller.client.open(path, method=method, headers=headers)
        assert_envelope(response, 401, code)
        assert response.headers["Access-Control-Allow-Origin"] == CRM_ORIGIN  # readable by the CRM


@pytest.mark.parametrize("way", ["crm-bearer", "crm-cookie"])
@pytest.mark.parametrize("role", ["marketing", "CEO", "superadmin", "viewer"])
def test_a_role_crm_ventas_does_not_have_is_refused(way, role, crm_app, make_app, make_tenant):
    caller = Caller(way, make_app, crm_app, make_tenant)
    token = crm_login_token(caller.tenant.tenant_id, role=role)
    if way == "crm-bearer":
        caller.headers["Authorization"] = f"Bearer {token}"
    else:
        caller.client.set_cookie("access_token", token)
    assert_envelope(caller.get("/crm/marketing/token-status"), 403, "unknown_role")


@pytest.mark.parametrize("role", ["professional", "secretary", "setter", "closer"])
def test_crm_members_read_but_do_not_change(role, crm_app, make_app, make_tenant):
    caller = Caller("crm-cookie", make_app, crm_app, make_tenant)
    caller.client.set_cookie("access_token", crm_login_token(caller.tenant.tenant_id, role=role))
    assert ok(caller.get("/crm/marketing/token-status"))["status"] == "disconnected"
    assert_envelope(caller.get("/crm/auth/meta/url"), 403, "admin_required")
    assert_envelope(caller.post("/crm/auth/meta/disconnect"), 403, "admin_required")


@pytest.mark.parametrize("origin", ["https://evil.example", "https://crm.example.com.evil.example",
                                    "http://crm.example.com", "null"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/crm/auth/meta/disconnect"),
                                              ("POST", "/crm/marketing/connect"),
                                              ("GET", "/crm/auth/meta/url")])
def test_a_cookie_call_from_another_origin_is_refused(origin, method, path, crm_app, make_app,
                                                      make_tenant, sandbox):
    caller = Caller("crm-cookie", make_app, crm_app, make_tenant)
    headers = {**caller.headers, "Origin": origin}
    response = caller.client.open(path, method=method, headers=headers, json={"account_id": "1"})
    assert_envelope(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_cookie_write_without_the_crm_header_is_refused(make_app, make_tenant):
    app = make_app(CRM_ORIGINS=[CRM_ORIGIN])  # no CRM_ADMIN_TOKEN: X-Tenant-ID alone suffices
    tenant = make_tenant("acme", app_=app)
    client = app.test_client()
    client.set_cookie("access_token", crm_login_token(tenant.tenant_id))
    # A cross-site form post: the cookie rides along, no custom header can.
    refused = client.post("/crm/auth/meta/disconnect", headers={"Origin": CRM_ORIGIN})
    assert_envelope(refused, 403, "csrf_header_required")
    refused = client.post("/crm/auth/meta/disconnect")  # no Origin at all (an old browser)
    assert_envelope(refused, 403, "csrf_header_required")
    accepted = client.post("/crm/auth/meta/disconnect",
                           headers={"Origin": CRM_ORIGIN, "X-Tenant-ID": str(tenant.tenant_id)})
    assert ok(accepted)["disconnected"] is True


def test_the_cookie_is_read_only_without_an_authorization_header(crm_app, make_app, make_tenant):
    caller = Caller("crm-cookie", make_app, crm_app, make_tenant)
    response = caller.client.get("/crm/marketing/token-status",
                                 headers={**caller.headers, "Authorization": "Bearer not-a-jwt"})
    assert_envelope(response, 401, "invalid_token")


def test_an_expired_crm_cookie_is_a_401(crm_app, make_app, make_tenant):
    caller = Caller("crm-cookie", make_app, crm_app, make_tenant)
    past = datetime.now(UTC) - timedelta(minutes=1)
    caller.client.set_cookie("access_token", crm_login_token(caller.tenant.tenant_id, exp=past))
    assert_envelope(caller.get("/crm/marketing/token-status"), 401, "token_expired")


def test_the_cookie_name_is_configurable(make_app, make_tenant):
    app = make_app(JWT_COOKIE_NAME="crm_jwt")
    tenant = make_tenant("acme", app_=app)
    client = app.test_client()
    client.set_cookie("access_token", crm_login_token(tenant.tenant_id))
    assert_envelope(client.get("/crm/marketing/token-status"), 401, "not_authenticated")
    client.set_cookie("crm_jwt", crm_login_token(tenant.tenant_id))
    assert ok(client.get("/crm/marketing/token-status"))["status"] == "disconnected"


def test_the_admin_token_is_not_asked_of_pages_or_of_meta(crm_app, make_tenant, sandbox):
    tenant = make_tenant("acme", app_=crm_app)
    client = crm_app.test_client()
    client.post("/login", data={"email": tenant.admin_email, "password": "correct horse battery"})
    assert client.get("/crm/marketing").status_code == 200
    # Meta's calls: refused for their own reasons (no valid state, no signature), never for
    # a missing X-Admin-Token.
    callback = client.get("/crm/auth/meta/callback?state=x&code=y",
                          headers={"Accept": "application/json"})
    assert_envelope(callback, 400, "invalid_state")
    deauthorize = client.post("/crm/meta/deauthorize", data={"signed_request": "a.b"})
    assert deauthorize.status_code == 400
