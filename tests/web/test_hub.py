"""The hub's banner in every status, its actions, roles and CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

ADMIN_BUTTONS = ("/connect/start", "/crm/marketing/meta/disconnect", "step=select",
                 'href="/crm/marketing/meta/connect"')


def days(n: float) -> timedelta:
    return timedelta(days=n)


def html(response) -> str:
    return response.get_data(as_text=True)


def banner(page: str) -> str:
    return page.split('<section class="banner', 1)[1].split("</section>", 1)[0]


def status_of(page: str) -> str:
    return re.search(r'data-status="([a-z_]+)"', page).group(1)


def test_disconnected_offers_connect_to_admins_only(client, auth, tenant):
    auth.login(tenant.admin_email)
    page = banner(html(client.get("/crm/marketing")))
    assert status_of(page) == "disconnected" and "Meta is not connected" in page
    assert 'href="/crm/marketing/meta/connect"' in page
    auth.logout()
    auth.login(tenant.member_email)
    page = banner(html(client.get("/crm/marketing")))
    assert status_of(page) == "disconnected"
    assert not any(button in page for button in ADMIN_BUTTONS)
    assert "Only a tenant admin can change the Meta connection" in page


def test_connected_shows_user_account_expiry_and_actions(connected, app):
    page = banner(html(connected.client.get("/crm/marketing")))
    assert status_of(page) == "connected" and "tone-ok" in page
    assert "María José Fernández" in page and "days left" in page
    assert "Test connection" in page and "Disconnect" in page and "Choose the ad account" in page


def clock(app):
    return app.extensions["crm_meta"].clock.now()


STAGES = {
    "expiring": (lambda now: {"expires_at": now + days(3.5)}, "tone-warn",
                 ["3 days, on", "Reconnect"]),
    "partial": (lambda now: {"scopes": lambda row: [s for s in row.scopes if s != "read_insights"]},
                "tone-warn", ["Read insights", "read_insights", 'name="rerequest" value="1"']),
    "throttled": (lambda now: {"status": "throttled", "throttled_until": now + days(0.05)},
                  "tone-info", ["This is temporary", "tries again after"]),
    "needs_reauth": (lambda now: {"status": "needs_reauth"}, "tone-danger",
                     ["password change", "Reconnect"]),
    "expired": (lambda now: {"expires_at": now - days(1)}, "tone-danger",
                ["ended on", "Reconnect"]),
    "revoked": (lambda now: {"status": "revoked"}, "tone-danger",
                ["removed the CRM's access", "Reconnect"]),
}


@pytest.mark.parametrize("status", list(STAGES))
def test_the_banner_tells_the_truth(status, connected, app, edit_row, client, auth, tenant):
    changes, tone, texts = STAGES[status]
    edit_row(**changes(clock(app)))
    page = banner(html(client.get("/crm/marketing")))
    assert status_of(page) == status and tone in page
    for text in texts:
        assert text in page
    if status in {"expiring", "needs_reauth", "expired", "revoked"}:
        assert 'action="/crm/marketing/meta/connect/start"' in page  # one-click Reconnect
    auth.logout()
    auth.login(tenant.member_email)
    member = banner(html(client.get("/crm/marketing")))
    assert status_of(member) == status
    assert not any(button in member for button in ADMIN_BUTTONS)


def test_data_access_ending_explains_the_90_days(connected, app, edit_row, client):
    edit_row(data_access_expires_at=clock(app) - days(1))
    page = banner(html(client.get("/crm/marketing")))
    assert status_of(page) == "needs_reauth" and "Every 90 days" in page


def test_test_connection_flashes_the_result(connected, client):
    response = client.post("/crm/marketing/meta/test", follow_redirects=True)
    assert "Meta confirmed that the connection works." in html(response)


def test_test_connection_failure_is_a_message_not_a_stack_trace(connected, client, sandbox, app):
    version = app.config["META_GRAPH_API_VERSION"]
    sandbox.fault(f"/{version}/debug_token", code=4, http_status=400, count=5)
    response = client.post("/crm/marketing/meta/test", follow_redirects=True)
    page = html(response)
    assert response.status_code == 200 and 'class="flash error"' in page
    assert "rate limiting" in page and "Traceback" not in page


def test_disconnect_asks_first_then_disconnects(connected, client):
    confirm = html(client.get("/crm/marketing/meta/disconnect"))
    assert "Disconnect Meta?" in confirm and 'action="/crm/marketing/meta/disconnect"' in confirm
    assert status_of(html(client.get("/crm/marketing"))) == "connected"  # nothing happened yet
    response = client.post("/crm/marketing/meta/disconnect", follow_redirects=True)
    page = html(response)
    assert "Meta has been disconnected" in page and status_of(page) == "disconnected"


def test_members_cannot_disconnect(connected, client, auth, tenant):
    auth.logout()
    auth.login(tenant.member_email)
    assert client.get("/crm/marketing/meta/disconnect").status_code == 403
    response = client.post("/crm/marketing/meta/disconnect")
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert client.post("/crm/marketing/meta/connect/select", data={"account_id": "1"}).status_code == 403


def test_forms_are_protected_against_csrf(make_app, make_tenant):
    app = make_app(WTF_CSRF_ENABLED=True)
    users = make_tenant("csrf", app_=app)
    client = app.test_client()
    login = html(client.get("/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    client.post("/login", data={"email": users.admin_email, "password": "correct horse battery",
                                "csrf_token": token})
    forged = client.post("/crm/marketing/meta/connect/start")
    assert forged.status_code == 400 and "The form expired" in html(forged)
    hub = html(client.get("/crm/marketing/meta/connect"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', hub.split("<main", 1)[1]).group(1)
    genuine = client.post("/crm/marketing/meta/connect/start", data={"csrf_token": token})
    assert genuine.status_code == 303


def test_rate_limited_forms_answer_with_a_page(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_META_URL="2/minute")
    users = make_tenant("limited", app_=app)
    client = app.test_client()
    client.post("/login", data={"email": users.admin_email, "password": "correct horse battery"})
    statuses = [client.post("/crm/marketing/meta/connect/start").status_code for _ in range(3)]
    assert statuses == [303, 303, 429]
    page = client.post("/crm/marketing/meta/connect/start")
    assert page.mimetype == "text/html" and "Too many requests" in html(page)
