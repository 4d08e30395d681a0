"""Bearer JWTs: HS256, required claims, tenant existence, X-Tenant-ID, admin roles."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from tests.helpers.responses import assert_envelope
from tests.helpers.settings import JWT_SECRET
from tests.helpers.users import bearer

STATUS = "/crm/marketing/token-status"
ADMIN_URL = "/crm/auth/meta/url"


def claims(tenant, **changes) -> dict:
    now = datetime.now(UTC)
    base = {"sub": "crm-user-7", "tenant_id": tenant, "role": "admin",
            "iat": now, "exp": now + timedelta(minutes=5)}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def header(token: str, **extra) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


def test_valid_token_reads_token_status(client, tenant):
    response = client.get(STATUS, headers=bearer(tenant.tenant_id, role="member"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["success"] is True
    assert body["data"]["connected"] is False
    assert body["data"]["status"] == "disconnected"


def test_token_made_with_pyjwt_directly_is_accepted(client, tenant):
    token = jwt.encode(claims(tenant.tenant_id), JWT_SECRET, algorithm="HS256")
    assert client.get(STATUS, headers=header(token)).status_code == 200


def test_tenant_claim_may_be_the_slug(client, tenant):
    token = jwt.encode(claims(tenant.slug), JWT_SECRET, algorithm="HS256")
    assert client.get(STATUS, headers=header(token)).status_code == 200


def test_expired_token_is_refused(client, tenant):
    past = datetime.now(UTC) - timedelta(minutes=5)
    token = jwt.encode(claims(tenant.tenant_id, iat=past - timedelta(hours=1), exp=past),
                       JWT_SECRET, algorithm="HS256")
    assert_envelope(client.get(STATUS, headers=header(token)), 401, "token_expired")


BAD_SIGNATURES = {
    "wrong-secret": lambda c: jwt.encode(c, "another-secret-of-enough-length-0123", algorithm="HS256"),
    "alg-none": lambda c: jwt.encode(c, None, algorithm="none"),
    "hs512-other-key": lambda c: jwt.encode(c, "another-secret-of-enough-length-0123-0123456789abcdef"
                                            "0123456789abcdef", algorithm="HS512"),
    "hs512-right-key": lambda c: _short_key_encode(c, JWT_SECRET, "HS512"),
    "tampered-payload": lambda c: _tamper(jwt.encode(c, JWT_SECRET, algorithm="HS256")),
}


def _short_key_encode(payload: dict, key: str, algorithm: str) -> str:
    with warnings.catch_warnings():  # PyJWT warns that the key is short for HS512: that is the point
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, key, algorithm=algorithm)


def _tamper(token: str) -> str:
    head, _, signature = token.split(".")
    forged = jwt.encode({"sub": "x", "tenant_id": 1, "role": "admin",
                         "exp": datetime.now(UTC) + timedelta(hours=1)}, "guess" * 8, algorithm="HS256")
    return ".".join([head, forged.split(".")[1], signature])


@pytest.mark.parametrize("make", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_badly_signed_tokens_are_refused(client, tenant, make):
    token = make(claims(tenant.tenant_id))
    assert_envelope(client.get(STATUS, headers=header(token)), 401, "invalid_token")


@pytest.mark.parametrize("missing", ["sub", "tenant_id", "role", "exp"])
def test_each_required_claim_is_required(client, tenant, missing):
    token = jwt.encode(claims(tenant.tenant_id, **{missing: None}), JWT_SECRET, algorithm="HS256")
    assert_envelope(client.get(STATUS, headers=header(token)), 401, "invalid_token")


@pytest.mark.parametrize("tenant_ref", [999, "999", "no-such-tenant"])
def test_unknown_tenant_is_refused(client, tenant, tenant_ref):
    token = jwt.encode(claims(tenant_ref), JWT_SECRET, algorithm="HS256")
    assert_envelope(client.get(STATUS, headers=header(token)), 401, "unknown_tenant")


@pytest.mark.parametrize("tenant_ref", [
    pytest.param(1.0, id="float"), pytest.param(None, id="null"), pytest.param([1], id="list"),
    pytest.param({"id": 1}, id="dict"),
    pytest.param(True, id="bool"),
])
def test_odd_tenant_claims_are_refused(client, tenant, tenant_ref):
    payload = claims(tenant.tenant_id)
    payload["tenant_id"] = tenant_ref
    token = jwt.encode(payload, JWT_SECRET, algorithm="HS256")
    assert client.get(STATUS, headers=header(token)).status_code == 401


@pytest.mark.parametrize("value", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "Bearer not-a-jwt", "Bearer a.b.c",
    "bearer",
])
def test_malformed_authorization_header_is_401_envelope(client, tenant, value):
    response = client.get(STATUS, headers={"Authorization": value})
    assert_envelope(response, 401, "invalid_token")


def test_no_credentials_is_401_envelope(client, tenant):
    assert_envelope(client.get(STATUS), 401, "not_authenticated")


def test_a_bad_bearer_is_not_rescued_by_a_session(admin_client, tenant):
    response = admin_client.get(STATUS, headers={"Authorization": "Bearer not-a-jwt"})
    assert_envelope(response, 401, "invalid_token")


@pytest.mark.parametrize("value", ["2", "other", "ACME", "02", "1.0"])  # "01" is tenant 1
def test_disagreeing_x_tenant_id_is_403(client, make_tenant, value):
    acme = make_tenant("acme")
    make_tenant("other")
    response = client.get(STATUS, headers=bearer(acme.tenant_id, **{"X-Tenant-ID": value}))
    assert_envelope(response, 403, "tenant_mismatch")


@pytest.mark.parametrize("value", [" 1", "", "1 ", "acmé", "ñ", "\x7f", "a\tb", "x" * 65])
@pytest.mark.parametrize("how", ["bearer", "session"])
def test_malformed_x_tenant_id_is_a_400_envelope(client, auth, tenant, value, how):
    headers = {"X-Tenant-ID": value}
    if how == "bearer":
        headers.update(bearer(tenant.tenant_id))
    else:
        auth.login(tenant.admin_email)
    assert_envelope(client.get(STATUS, headers=headers), 400, "invalid_tenant_header")


@pytest.mark.parametrize("which", ["id", "slug"])
def test_agreeing_x_tenant_id_passes(client, tenant, which):
    value = str(tenant.tenant_id) if which == "id" else tenant.slug
    response = client.get(STATUS, headers=bearer(tenant.tenant_id, **{"X-Tenant-ID": value}))
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("role", ["admin", "ceo"])
def test_admin_roles_reach_admin_endpoints(client, tenant, role):
    response = client.get(ADMIN_URL, headers=bearer(tenant.tenant_id, role=role))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["expires_in"] == 300


def test_admin_roles_follow_configuration(make_app, make_tenant):
    app = make_app(META_ADMIN_ROLES=["owner"], META_MEMBER_ROLES=["admin", "staff"])
    acme = make_tenant("acme", app_=app)
    client = app.test_client()
    assert client.get(ADMIN_URL, headers=bearer(acme.tenant_id, role="owner")).status_code == 200
    assert_envelope(client.get(ADMIN_URL, headers=bearer(acme.tenant_id, role="admin")), 403,
                    "admin_required")
    assert client.get(STATUS, headers=bearer(acme.tenant_id, role="staff")).status_code == 200
    assert_envelope(client.get(STATUS, headers=bearer(acme.tenant_id, role="ceo")), 403,
                    "unknown_role")


ADMIN_ENDPOINTS = [
    ("GET", ADMIN_URL),
    ("POST", "/crm/auth/meta/disconnect"),
    ("GET", "/crm/auth/meta/debug/token"),
    ("POST", "/crm/marketing/connect"),
]
CRM_MEMBER_ROLES = ["member", "professional", "secretary", "setter", "closer"]


@pytest.mark.parametrize("role", CRM_MEMBER_ROLES)
@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
def test_member_roles_get_403_on_admin_endpoints(client, tenant, role, method, path):
    response = client.open(path, method=method, headers=bearer(tenant.tenant_id, role=role),
                           json={"account_id": "act_1"})
    assert_envelope(response, 403, "admin_required")


@pytest.mark.parametrize("role", ["viewer", "Admin", "CEO", "", "superadmin"])
@pytest.mark.parametrize(("method", "path"), [*ADMIN_ENDPOINTS, ("GET", STATUS),
                                              ("GET", "/crm/auth/meta/test-connection")])
def test_unknown_roles_are_refused_everywhere(client, tenant, role, method, path):
    response = client.open(path, method=method, headers=bearer(tenant.tenant_id, role=role),
                           json={"account_id": "act_1"})
    assert_envelope(response, 403, "unknown_role")


@pytest.mark.parametrize("role", [1, None, ["admin"], {"name": "admin"}, True])
def test_a_role_that_is_not_a_string_is_refused(client, tenant, role):
    token = jwt.encode(claims(tenant.tenant_id, role="admin") | {"role": role}, JWT_SECRET,
                       algorithm="HS256")
    assert_envelope(client.get(STATUS, headers=header(token)), 401, "invalid_token")


@pytest.mark.parametrize("role", CRM_MEMBER_ROLES)
@pytest.mark.parametrize("path", [STATUS, "/crm/auth/meta/test-connection"])
def test_member_roles_read_member_endpoints(client, tenant, role, path):
    response = client.get(path, headers=bearer(tenant.tenant_id, role=role))
    assert response.status_code == 200, response.get_json()


def test_session_member_gets_403_on_admin_endpoint(client, auth, tenant):
    auth.login(tenant.member_email)
    assert client.get(STATUS).status_code == 200
    assert_envelope(client.get(ADMIN_URL), 403, "admin_required")


def test_session_with_disagreeing_x_tenant_id_is_403(admin_client, make_tenant, tenant):
    other = make_tenant("other")
    for value in (str(other.tenant_id), other.slug, "nope"):
        response = admin_client.get(STATUS, headers={"X-Tenant-ID": value})
        assert_envelope(response, 403, "tenant_mismatch")


@pytest.mark.parametrize("which", ["id", "slug"])
def test_session_with_agreeing_x_tenant_id_passes(admin_client, tenant, which):
    value = str(tenant.tenant_id) if which == "id" else tenant.slug
    assert admin_client.get(STATUS, headers={"X-Tenant-ID": value}).status_code == 200


# -- optional audience and issuer (review 2) -----------------------------------------------------
@pytest.mark.parametrize("extra, status", [
    ({"aud": "crm-meta", "iss": "crm-ventas"}, 200),
    ({"aud": ["other", "crm-meta"], "iss": "crm-ventas"}, 200),
    ({"iss": "crm-ventas"}, 401),                      # aud missing
    ({"aud": "crm-meta"}, 401),                        # iss missing
    ({"aud": "someone-else", "iss": "crm-ventas"}, 401),
    ({"aud": "crm-meta", "iss": "attacker"}, 401),
])
def test_audience_and_issuer_are_checked_when_set(make_app, make_tenant, extra, status):
    app = make_app(JWT_AUDIENCE="crm-meta", JWT_ISSUER="crm-ventas")
    acme = make_tenant("acme", app_=app)
    token = jwt.encode(claims(acme.tenant_id, **extra), JWT_SECRET, algorithm="HS256")
    response = app.test_client().get(STATUS, headers=header(token))
    assert response.status_code == status
    if status == 401:
        assert_envelope(response, 401, "invalid_token")


def test_without_the_settings_neither_claim_is_required(client, tenant):
    token = jwt.encode(claims(tenant.tenant_id), JWT_SECRET, algorithm="HS256")
    assert client.get(STATUS, headers=header(token)).status_code == 200
