"""Rate limits on our own endpoints: per tenant when authenticated, envelope with Retry-After."""

import pytest

from tests.helpers import PASSWORD, bearer


@pytest.fixture
def limited(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_META_URL="3/minute",
                   RATELIMIT_META_DISCONNECT="2/minute", RATELIMIT_META_CALLBACK="2/minute")
    tenants = make_tenant("alpha", app_=app), make_tenant("beta", app_=app)
    return app, tenants


def test_url_limit_is_per_tenant_and_answers_the_envelope(limited):
    app, (alpha, beta) = limited
    client = app.test_client()
    for _ in range(3):
        assert client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id)).status_code == 200
    response = client.get("/crm/auth/meta/url", headers=bearer(alpha.tenant_id, sub="other-user"))
    assert response.status_code == 429
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    assert client.get("/crm/auth/meta/url", headers=bearer(beta.tenant_id)).status_code == 200


def test_disconnect_limit(limited):
    app, (alpha, _beta) = limited
    client = app.test_client()
    client.post("/login", data={"email": alpha.admin_email, "password": PASSWORD})
    codes = [client.post("/crm/auth/meta/disconnect").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_callback_is_limited_by_address(limited):
    app, _ = limited
    client = app.test_client()
    codes = [client.get("/crm/auth/meta/callback?state=x&code=y").status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    other = app.test_client()
    response = other.get("/crm/auth/meta/callback?state=x&code=y",
                         environ_overrides={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 400
