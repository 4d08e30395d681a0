"""The callback refuses every state attack and survives Meta's failures without a 500."""

from urllib.parse import parse_qs, urlsplit

import pytest

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from tests.helpers.sandbox import MetaFlow
from tests.helpers.users import PASSWORD

INVALID = "Invalid or expired OAuth state"


def assert_invalid_state(response):
    assert response.status_code == 400
    body = response.get_json()
    assert body["detail"] == INVALID and body["error"]["code"] == "invalid_state"


def with_state(location: str, state: str | None) -> str:
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if state is None:
        query.pop("state")
    else:
        query["state"] = state
    return parts.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.fixture
def approved(meta_flow):
    """A consent already approved at the sandbox: (flow, location)."""
    data = meta_flow.start()
    return meta_flow, meta_flow.sandbox.consent(data["auth_url"])


def test_seed_example_invalid_state(client):
    response = client.get("/crm/auth/meta/callback?code=test&state=invalid")
    assert response.status_code == 400
    assert "Invalid or expired OAuth state" in response.get_json()["detail"]


@pytest.mark.parametrize("state", [None, "", "unknown-state", "x" * 500])
def test_missing_or_unknown_state(approved, state):
    flow, location = approved
    assert_invalid_state(flow.client.get(with_state(location, state)))


def test_replayed_state_is_refused(approved):
    flow, location = approved
    assert flow.callback(location).status_code == 200
    assert_invalid_state(flow.callback(location))


def test_expired_state_is_refused(approved):
    flow, location = approved
    flow.sandbox.advance(301)  # the app's clock follows the sandbox's
    assert_invalid_state(flow.callback(location))


def test_state_from_another_browser_is_refused(app, approved, tenant):
    _flow, location = approved
    other = app.test_client()  # same user, other browser: no binding cookie
    other.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
    parts = urlsplit(location)
    assert_invalid_state(other.get(f"{parts.path}?{parts.query}"))
    other.set_cookie("crm_meta_oauth", "a-cookie-value-from-somewhere-else-123", path="/crm/")
    assert_invalid_state(other.get(f"{parts.path}?{parts.query}"))


def test_a_state_cannot_be_used_for_another_tenant(app, approved, make_tenant, sandbox):
    """A state belongs to the tenant that asked; another tenant's admin cannot complete it."""
    flow, location = approved
    other_tenant = make_tenant("globex")
    thief = app.test_client()
    thief.post("/login", data={"email": other_tenant.admin_email, "password": PASSWORD})
    thief_flow = MetaFlow(thief, sandbox)
    thief_flow.start()  # the thief has a binding cookie of its own
    assert_invalid_state(thief_flow.callback(location))
    with app.app_context():
        query = db.select(MetaConnection).filter_by(tenant_id=other_tenant.tenant_id)
        assert db.session.scalar(query) is None


def test_code_missing_is_a_clear_error(approved):
    flow, location = approved
    parts = urlsplit(location)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("code="))
    response = flow.client.get(f"{parts.path}?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("fault", [
    {"path": "/v25.0/oauth/access_token", "code": 100, "error_subcode": 36009, "http_status": 400},
    {"path": "/v25.0/oauth/access_token", "code": 2, "http_status": 500, "count": 1},
    {"path": "/v25.0/debug_token", "code": 2, "http_status": 500, "count": 10},
    {"path": "/v25.0/me", "code": 190, "error_subcode": 460, "http_status": 400},
    {"path": "/v25.0/me", "code": 613, "http_status": 400, "count": 10},
    {"path": "/v25.0/me", "http_status": 200, "malformed": True, "count": 10},
])
def test_meta_failures_during_the_callback_are_502_and_keep_the_old_connection(
        app, meta_flow, tenant, fault):
    assert meta_flow.connect().status_code == 200
    with app.app_context():
        before = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant.tenant_id))
        before_token = before.token_ciphertext
    meta_flow.sandbox.fault(**{"count": 1, **fault})
    response = meta_flow.connect()
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "meta_error"
    with app.app_context():
        after = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant.tenant_id))
        assert after.token_ciphertext == before_token  # nothing lost


def test_timeout_at_meta_is_502_not_500(make_app, make_tenant, sandbox):
    app = make_app(META_HTTP_TIMEOUT=0.3, META_HTTP_RETRIES=0)
    make_tenant("acme", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD})
    sandbox.fault(path="/v25.0/debug_token", latency_ms=1200, count=1)
    response = MetaFlow(client, sandbox).connect()
    assert response.status_code == 502


def test_browsers_are_sent_back_to_the_wizard(approved):
    flow, location = approved
    response = flow.callback(location, accept="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/crm/marketing/meta/connect?step=select")
    replay = flow.callback(location, accept="text/html")
    assert replay.status_code == 302
    assert replay.headers["Location"].endswith("/crm/marketing/meta/connect?error=invalid_state")


def test_cancel_in_a_browser_returns_to_step_one_with_a_code(meta_flow):
    response = meta_flow.connect(decision="cancel", accept="text/html")
    assert response.headers["Location"].endswith("?error=oauth_denied")


def test_frontend_url_receives_browsers_when_configured(make_app, make_tenant, sandbox):
    app = make_app(FRONTEND_URL="https://app.crm.test")
    make_tenant("acme", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD})
    flow = MetaFlow(client, sandbox)
    ok = flow.connect(accept="text/html")
    assert ok.headers["Location"] == "https://app.crm.test/crm/marketing?success=connected"
    denied = flow.connect(decision="cancel", accept="text/html")
    assert denied.headers["Location"] == "https://app.crm.test/crm/marketing?error=oauth_denied"


def test_state_is_bound_to_the_user_who_started_it(approved, tenant):
    """Same browser, but another user logged in since: the state is not theirs."""
    flow, location = approved
    flow.client.post("/logout")
    flow.client.post("/login", data={"email": tenant.member_email, "password": PASSWORD})
    assert_invalid_state(flow.callback(location))
