"""The API's edge: CORS for the CRM's origins, state-changing GETs, claims, HSTS, rate budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from config import ConfigError, DevelopmentConfig, ProductionConfig
from crm_meta.app import create_app
from tests.helpers.responses import assert_envelope
from tests.helpers.settings import JWT_SECRET
from tests.helpers.users import bearer

CRM = "http://localhost:5173"
STATUS = "/crm/marketing/token-status"
URL = "/crm/auth/meta/url"
API_ROUTES = [("GET", STATUS), ("GET", URL), ("GET", "/crm/marketing/meta-portfolios"),
              ("GET", "/crm/marketing/meta-accounts"), ("POST", "/crm/marketing/connect"),
              ("GET", "/crm/auth/meta/test-connection"), ("GET", "/crm/auth/meta/debug/token"),
              ("POST", "/crm/auth/meta/disconnect")]


def token(tenant, **claims) -> str:
    body = {"user_id": "7", "role": "ceo", "tenant_id": tenant,
            "exp": datetime.now(UTC) + timedelta(minutes=5)} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, JWT_SECRET, algorithm="HS256")


def preflight(client, path, origin=CRM, method="POST",
              headers="content-type,x-admin-token,x-tenant-id"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


# -- CORS ----------------------------------------------------------------------------------
@pytest.fixture
def cors_app(make_app):
    return make_app(CRM_ORIGINS=[CRM], CRM_ADMIN_TOKEN="admin-token-0123456789")


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_preflight_from_the_crm_origin_is_answered(cors_app, method, path):
    response = preflight(cors_app.test_client(), path, method=method)
    assert response.status_code == 200  # a preflight carries no X-Admin-Token: never a 401
    assert response.headers["Access-Control-Allow-Origin"] == CRM
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-admin-token", "x-tenant-id"} <= allowed
    assert method in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:5174", "null",
                                    "http://localhost:5173.evil.example", "HTTP://LOCALHOST:5173x"])
def test_no_cors_for_other_origins(cors_app, origin):
    client = cors_app.test_client()
    assert "Access-Control-Allow-Origin" not in preflight(client, STATUS, origin=origin).headers
    assert "Access-Control-Allow-Origin" not in client.get(STATUS, headers={"Origin": origin}).headers


@pytest.mark.parametrize("path", ["/crm/marketing", "/login", "/crm/auth/meta/callback",
                                  "/crm/meta/deauthorize", "/healthz", "/metrics"])
def test_no_cors_outside_the_api(cors_app, path):
    response = preflight(cors_app.test_client(), path)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_at_all_without_crm_origins(make_app):
    response = preflight(make_app().test_client(), STATUS)
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("origins", ["*", "https://*.example.com", "https://crm.example.com/app",
                                     "crm.example.com", "https://crm.example.com,*"])
def test_crm_origins_must_be_exact(origins):
    with pytest.raises(ConfigError, match="CRM_ORIGINS"):
        DevelopmentConfig({"CRM_ORIGINS": origins}).validate()


def test_crm_origins_are_read_as_a_list():
    config = DevelopmentConfig({"CRM_ORIGINS": "https://crm.example.com, http://localhost:5173/"})
    config.validate()
    assert config.CRM_ORIGINS == ["https://crm.example.com", "http://localhost:5173"]


def test_defaults_follow_the_contract():
    config = DevelopmentConfig({})
    assert config.META_MEMBER_ROLES == ["member", "professional", "secretary", "setter", "closer"]
    assert config.JWT_SUBJECT_CLAIMS == ["sub", "user_id"]
    assert config.JWT_COOKIE_NAME == "access_token"
    assert (config.CRM_ADMIN_TOKEN, config.CRM_ORIGINS) == ("", [])


# -- state-changing GETs under a cookie ------------------------------------------------------
STATE_CHANGING = [URL, "/crm/auth/meta/test-connection", "/crm/marketing/meta-portfolios?refresh=1"]


@pytest.mark.parametrize("path", STATE_CHANGING)
@pytest.mark.parametrize("site", [None, "cross-site", "same-site", "none"])
def test_a_state_changing_get_by_session_needs_same_origin(admin_client, path, site):
    headers = {"Sec-Fetch-Site": site} if site else {}
    if site is None:
        admin_client.environ_base.pop("HTTP_SEC_FETCH_SITE", None)
    assert_envelope(admin_client.get(path, headers=headers), 403, "cross_site_request")


@pytest.mark.parametrize("path", STATE_CHANGING)
def test_a_state_changing_get_by_session_from_our_pages_passes(admin_client, path):
    response = admin_client.get(path, headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code in (200, 409), response.get_json()  # 409: not connected yet


@pytest.mark.parametrize("path", STATE_CHANGING)
def test_a_state_changing_get_by_the_crm_cookie_needs_its_header(client, tenant, path):
    client.set_cookie("access_token", token(tenant.tenant_id))
    assert_envelope(client.get(path, headers={"Sec-Fetch-Site": "cross-site"}), 403,
                    "cross_site_request")
    response = client.get(path, headers={"Sec-Fetch-Site": "cross-site",
                                         "X-Tenant-ID": str(tenant.tenant_id)})
    assert response.status_code in (200, 409), response.get_json()


def test_reads_and_bearer_calls_need_no_such_header(client, tenant, admin_client):
    plain = {"Sec-Fetch-Site": "cross-site"}
    assert admin_client.get(STATUS, headers=plain).status_code == 200
    assert admin_client.get("/crm/marketing/meta-portfolios", headers=plain).status_code == 409
    other = client.application.test_client()
    assert other.get(URL, headers={**plain, **bearer(tenant.tenant_id)}).status_code == 200


# -- claims ----------------------------------------------------------------------------------
def test_sub_wins_over_user_id_and_the_order_is_configurable(make_app, make_tenant):
    from crm_meta.auth.principal import current_principal

    for claims_setting, expected in ((["sub", "user_id"], "jwt:s-1"), (["user_id", "sub"], "jwt:7")):
        app = make_app(JWT_SUBJECT_CLAIMS=claims_setting)
        acme = make_tenant("acme", app_=app)
        headers = {"Authorization": f"Bearer {token(acme.tenant_id, sub='s-1')}"}
        with app.test_request_context(STATUS, headers=headers):
            assert current_principal().actor == expected


@pytest.mark.parametrize("user_id, code", [
    (7, 200), ("u" * 96, 200), ("u" * 97, 401), ("", 401), (None, 401), (True, 401),
    (["7"], 401), ({"id": 7}, 401), ("a\nb", 401), ("é" * 10, 200),
])
def test_subject_shapes(client, tenant, user_id, code):
    headers = {"Authorization": f"Bearer {token(tenant.tenant_id, user_id=user_id)}"}
    response = client.get(URL, headers=headers)
    assert response.status_code == code, response.get_json()
    if code == 401:
        assert_envelope(response, 401, "invalid_token")


@pytest.mark.parametrize("ref, code", [
    ("1", 200), (1, 200), (2**31, 401), (2**70, 401), (-1, 401), ("0001", 200), ("²", 401),
    ("٣", 401), ("a" * 65, 401), ("acme\x00", 401), (1.5, 401), (True, 401),
])
def test_tenant_id_shapes(client, tenant, ref, code):
    assert tenant.tenant_id == 1
    response = client.get(STATUS, headers={"Authorization": f"Bearer {token(ref)}"})
    assert response.status_code == code, response.get_json()


def test_a_crm_token_needs_no_iat_but_an_exp(client, tenant):
    headers = {"Authorization": f"Bearer {token(tenant.tenant_id, exp=None)}"}
    assert_envelope(client.get(STATUS, headers=headers), 401, "invalid_token")


# -- HSTS ------------------------------------------------------------------------------------
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40,
              "ENCRYPTION_KEY": "ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWU=",
              "META_APP_ID": "123456789", "META_APP_SECRET": "a" * 32,
              "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback"}


def test_hsts_in_production_only(tmp_path, client):
    app = create_app(ProductionConfig(PRODUCTION | {"DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}))
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


# -- rate limits count authorized calls only -------------------------------------------------
@pytest.mark.parametrize(("method", "path", "setting"), [
    ("GET", URL, "RATELIMIT_META_URL"), ("POST", "/crm/auth/meta/disconnect", "RATELIMIT_META_DISCONNECT"),
])
def test_refused_calls_do_not_spend_the_admins_budget(make_app, make_tenant, method, path, setting):
    app = make_app(RATELIMIT_ENABLED=True, **{setting: "2/hour"})
    acme = make_tenant("acme", app_=app)
    client = app.test_client()
    member, stranger = bearer(acme.tenant_id, role="member"), bearer(acme.tenant_id, role="viewer")
    for _ in range(5):
        assert_envelope(client.open(path, method=method, headers=member), 403, "admin_required")
        assert_envelope(client.open(path, method=method, headers=stranger), 403, "unknown_role")
    admin = bearer(acme.tenant_id, role="ceo")
    codes = [client.open(path, method=method, headers=admin).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
