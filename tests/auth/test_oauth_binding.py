"""The OAuth browser binding cannot be fixed (review 2, medium): the cookie is fresh on every
start, `__Host-` prefixed and Secure where cookies are, and the state belongs to the principal
(tenant and subject) that started it, whichever credential it used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import jwt
import pytest

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from tests.helpers.settings import JWT_SECRET
from tests.helpers.users import bearer

PLANTED = "attacker-planted-binding-value-0123456789"


def crm_cookie_token(tenant_id: int, user_id: str) -> str:
    """CRM Ventas' own login token, as its HttpOnly `access_token` cookie carries it."""
    claims = {"user_id": user_id, "email": "v@victim.test", "role": "ceo", "tenant_id": tenant_id,
              "niche_type": "crm_sales", "exp": datetime.now(UTC) + timedelta(days=7)}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def set_cookie_of(response, name: str) -> SimpleCookie:
    for header in response.headers.getlist("Set-Cookie"):
        jar = SimpleCookie(header)
        if name in jar:
            return jar
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.getlist('Set-Cookie')}")


def callback(client, location: str):
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}", headers={"Accept": "application/json"})


def connection_of(app, tenant_id: int):
    with app.app_context():
        return db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))


def test_a_presented_binding_value_is_never_set_back(client, tenant):
    """The review's reproduction: /url with a planted cookie answered with that same value."""
    client.set_cookie("crm_meta_oauth", PLANTED)
    response = client.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id))
    assert response.status_code == 200
    value = set_cookie_of(response, "crm_meta_oauth")["crm_meta_oauth"].value
    assert value != PLANTED and len(value) >= 40
    again = client.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id))
    assert set_cookie_of(again, "crm_meta_oauth")["crm_meta_oauth"].value != value


def test_the_fixation_of_the_review_fails(app, make_tenant, sandbox):
    """An attacker starts a connect for its tenant, plants its binding cookie in a victim's
    browser logged in to the CRM (access_token cookie) and lures the victim through Meta's
    dialog: the callback is refused and the attacker's tenant gets nothing."""
    attacker, victim = make_tenant("evil"), make_tenant("victim")
    attacker_client = app.test_client()
    started = attacker_client.get("/crm/auth/meta/url", headers=bearer(attacker.tenant_id, sub="666"))
    assert started.status_code == 200
    planted = set_cookie_of(started, "crm_meta_oauth")["crm_meta_oauth"].value
    # The victim approves the attacker's dialog URL with the victim's own Meta account.
    location = sandbox.consent(started.get_json()["data"]["auth_url"])
    browser = app.test_client()
    browser.set_cookie("access_token", crm_cookie_token(victim.tenant_id, "7"))
    browser.set_cookie("crm_meta_oauth", planted)
    response = callback(browser, location)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_state"
    assert connection_of(app, attacker.tenant_id) is None


@pytest.mark.parametrize("how", ["header", "cookie"])
def test_same_tenant_other_subject_is_refused(app, tenant, sandbox, how):
    """Bound to the subject too: another user of the same tenant cannot finish it."""
    starter = app.test_client()
    started = starter.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id, sub="1"))
    value = set_cookie_of(started, "crm_meta_oauth")["crm_meta_oauth"].value
    location = sandbox.consent(started.get_json()["data"]["auth_url"])
    other = app.test_client()
    other.set_cookie("crm_meta_oauth", value)
    token = crm_cookie_token(tenant.tenant_id, "2")
    if how == "cookie":
        other.set_cookie("access_token", token)
        response = callback(other, location)
    else:
        parts = urlsplit(location)
        response = other.get(f"{parts.path}?{parts.query}",
                             headers={"Accept": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert connection_of(app, tenant.tenant_id) is None


def test_an_unresolvable_credential_matches_no_state(app, tenant, sandbox):
    starter = app.test_client()
    started = starter.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id, sub="1"))
    location = sandbox.consent(started.get_json()["data"]["auth_url"])
    starter.set_cookie("access_token", "not-a-jwt")
    assert callback(starter, location).status_code == 400


def test_the_crm_cookie_principal_that_started_it_finishes_it(app, tenant, sandbox):
    browser = app.test_client()
    browser.set_cookie("access_token", crm_cookie_token(tenant.tenant_id, "42"))
    started = browser.get("/crm/auth/meta/url",
                          headers={"X-Tenant-ID": str(tenant.tenant_id)})
    assert started.status_code == 200
    location = sandbox.consent(started.get_json()["data"]["auth_url"])
    assert callback(browser, location).status_code == 200
    assert connection_of(app, tenant.tenant_id).connected_by == "jwt:42"


def test_a_script_bound_by_the_cookie_alone_still_connects(app, tenant, sandbox):
    """README's script: /url with a bearer, the callback with the cookie jar only."""
    script = app.test_client()
    started = script.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id))
    location = sandbox.consent(started.get_json()["data"]["auth_url"])
    assert callback(script, location).status_code == 200


def test_production_cookie_is_host_prefixed_and_secure(make_app, make_tenant):
    app = make_app(SESSION_COOKIE_SECURE=True)
    acme = make_tenant("acme", app_=app)
    client = app.test_client()
    response = client.get("/crm/auth/meta/url", headers=bearer(acme.tenant_id))
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-"))
    morsel = SimpleCookie(header)["__Host-crm_meta_oauth"]
    assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/"
    assert not morsel["domain"] and morsel["samesite"] == "Lax"
    assert not any(h.startswith("crm_meta_oauth=") for h in response.headers.getlist("Set-Cookie"))


def test_development_cookie_works_over_plain_http(client, tenant):
    response = client.get("/crm/auth/meta/url", headers=bearer(tenant.tenant_id))
    morsel = set_cookie_of(response, "crm_meta_oauth")["crm_meta_oauth"]
    assert not morsel["secure"] and morsel["path"] == "/"
