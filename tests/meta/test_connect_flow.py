"""The whole connect flow against the live sandbox, through the JSON API."""

from urllib.parse import parse_qs, urlsplit

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, MetaConnection
from meta_sandbox.fixtures import USER_WITHOUT_BUSINESSES
from tests.helpers.settings import APP_ID, REDIRECT_URI

ALL_SCOPES = ["ads_management", "business_management", "whatsapp_business_management",
              "pages_show_list", "pages_read_engagement", "read_insights"]


def stored(app, tenant_id):
    with app.app_context():
        return db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))


def test_auth_url_carries_everything_meta_needs(admin_client, sandbox_server):
    response = admin_client.get("/crm/auth/meta/url")
    data = response.get_json()["data"]
    assert data["expires_in"] == 300
    url = urlsplit(data["auth_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sandbox_server.url}/v25.0/dialog/oauth"
    query = parse_qs(url.query)
    assert query["client_id"] == [APP_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["state"] == [data["state"]]
    assert query["response_type"] == ["code"]
    assert query["scope"][0].split(",") == ALL_SCOPES
    # No PKCE: Meta's web dialog drops code_challenge, then refuses the exchange's verifier.
    assert not {"code_challenge", "code_challenge_method", "code_verifier"} & set(query)
    assert "auth_type" not in query
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age" in cookie


def test_rerequest_and_login_for_business(make_app, make_tenant):
    app = make_app(META_LOGIN_CONFIG_ID="987654321")
    make_tenant("acme", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.test", "password": "correct horse battery"})
    query = parse_qs(urlsplit(client.get("/crm/auth/meta/url?rerequest=1")
                              .get_json()["data"]["auth_url"]).query)
    assert query["config_id"] == ["987654321"] and "scope" not in query
    assert query["auth_type"] == ["rerequest"]


def test_approve_connects_and_discovers_everything(app, meta_flow, sandbox, tenant):
    response = meta_flow.connect()
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["connected"] is True
    assert data["status"] == "connected"
    assert data["missing_scopes"] == []
    assert set(ALL_SCOPES) <= set(data["scopes"])
    assert data["token_expires_at"]
    businesses = data["business_managers"]
    assert len(businesses) >= 2
    biggest = max(businesses, key=lambda b: b["ad_accounts_count"])
    assert biggest["ad_accounts_count"] > 100  # more than one page: every page was followed
    ids = [a["id"] for a in biggest["ad_accounts"]]
    assert len(ids) == len(set(ids))
    account = biggest["ad_accounts"][0]
    assert set(account) == {"id", "account_id", "name", "currency", "timezone", "status",
                            "account_status", "business_id"}
    assert account["id"] == f"act_{account['account_id']}" and account["business_id"] == biggest["id"]
    row = stored(app, tenant.tenant_id)
    assert row.token_ciphertext.startswith("v1.") and "EAA" not in row.token_ciphertext
    assert row.meta_user_id and row.meta_user_name
    assert any(b["whatsapp_business_accounts"] for b in row.business_managers)
    assert row.pages and all("access_token" not in page for page in row.pages)
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).filter_by(action="meta.connect"))
        assert (event.outcome, event.tenant_id) == ("success", tenant.tenant_id)


def test_connect_flow_makes_few_sequential_round_trips(app, meta_flow):
    graph = app.extensions["crm_meta"].graph
    calls = []
    original = graph._once
    graph._once = lambda out: calls.append(out.path) or original(out)
    assert meta_flow.connect().status_code == 200
    # exchange, debug_token, /me with field expansion, one batch for every further page
    assert len(calls) <= 5, calls
    assert calls[:3] == ["oauth/access_token", "debug_token", "me"]


def test_long_lived_code_token_skips_the_second_exchange(meta_flow, sandbox):
    assert meta_flow.connect().status_code == 200
    assert len(sandbox.calls("/oauth/access_token")) == 1


def test_short_lived_code_token_is_exchanged_for_a_long_lived_one(app, meta_flow, sandbox, tenant):
    sandbox.post("config", code_token_expires_in=7200)
    assert meta_flow.connect().status_code == 200
    assert len(sandbox.calls("/oauth/access_token")) == 2
    row = stored(app, tenant.tenant_id)
    lifetime = row.expires_at - row.issued_at
    assert lifetime.days >= 55


def test_cancel_at_meta_is_oauth_denied_and_consumes_the_state(app, meta_flow, tenant):
    data = meta_flow.start()
    location = meta_flow.sandbox.consent(data["auth_url"], decision="cancel")
    assert "error=access_denied" in location and "error_reason=user_denied" in location
    response = meta_flow.callback(location)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "oauth_denied"
    assert stored(app, tenant.tenant_id) is None
    assert meta_flow.callback(location).get_json()["error"]["code"] == "invalid_state"


def test_partial_consent_reports_missing_scopes(app, meta_flow, tenant):
    granted = [s for s in ALL_SCOPES if s != "whatsapp_business_management"]
    response = meta_flow.connect(granted=granted)
    data = response.get_json()["data"]
    assert data["status"] == "partial"
    assert data["missing_scopes"] == ["whatsapp_business_management"]
    assert data["rerequest_url"] == "/crm/auth/meta/url?rerequest=1"
    status = meta_flow.client.get("/crm/marketing/token-status").get_json()["data"]
    assert status["status"] == "partial" and status["missing_scopes"] == ["whatsapp_business_management"]
    # granting it again through a rerequest completes the connection
    data = meta_flow.start(rerequest=1)
    assert "auth_type=rerequest" in data["auth_url"]
    location = meta_flow.sandbox.consent(data["auth_url"], granted=ALL_SCOPES)
    assert meta_flow.callback(location).get_json()["data"]["status"] == "connected"


def test_login_for_business_gives_a_token_that_never_expires(make_app, make_tenant, sandbox):
    from tests.helpers.sandbox import MetaFlow

    app = make_app(META_LOGIN_CONFIG_ID="555000111")
    make_tenant("acme", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": "admin@acme.test", "password": "correct horse battery"})
    response = MetaFlow(client, sandbox).connect()
    data = response.get_json()["data"]
    assert data["status"] == "connected" and data["token_expires_at"] is None
    status = client.get("/crm/marketing/token-status").get_json()["data"]
    assert status["expires_at"] is None and status["days_left"] is None
    assert client.get("/crm/auth/meta/test-connection").get_json()["data"]["token_type"] == "SYSTEM_USER"


def test_reconnect_keeps_the_chosen_ad_account(app, meta_flow, tenant):
    data = meta_flow.connect().get_json()["data"]
    business = data["business_managers"][1]
    account = business["ad_accounts"][0]
    chosen = meta_flow.client.post("/crm/marketing/connect", json={
        "account_id": account["id"], "business_id": business["id"]})
    assert chosen.status_code == 200
    assert meta_flow.connect().status_code == 200
    status = meta_flow.client.get("/crm/marketing/token-status").get_json()["data"]
    assert status["selected_ad_account"]["account_id"] == account["id"]


def test_a_tenant_with_no_businesses_sees_its_personal_ad_accounts(meta_flow):
    body = meta_flow.connect(user_id=USER_WITHOUT_BUSINESSES).get_json()["data"]
    assert body["business_managers"] == []
    assert body["personal_ad_accounts"]
    accounts = meta_flow.client.get("/crm/marketing/meta-accounts").get_json()["data"]
    assert {a["id"] for a in accounts} == {a["id"] for a in body["personal_ad_accounts"]}
