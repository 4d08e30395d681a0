"""The wizard's steps through the Flask test client, against the live sandbox."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from meta_sandbox import USER_WITHOUT_BUSINESSES

ANDINA = "2010000000000001"  # the sandbox's first business, with more than 100 ad accounts


def html(response) -> str:
    return response.get_data(as_text=True)


def main(page: str) -> str:
    """The page's own content (the header's links carry the current URL)."""
    return page.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def radios(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)"', page)


def checked(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)"[^>]*\bchecked\b', page)


def test_step_one_explains_every_permission(admin_client, app):
    page = html(admin_client.get("/crm/marketing/meta/connect"))
    assert 'aria-current="step"' in page and "Connect your Meta business account" in page
    for scope in app.config["META_SCOPES"]:
        assert f'<code class="scope">{scope}</code>' in page
    assert "To list your business portfolios" in page  # the why, not only the name
    assert 'action="/crm/marketing/meta/connect/start"' in page


def test_members_see_the_explanation_without_the_button(client, auth, tenant):
    auth.login(tenant.member_email)
    page = html(client.get("/crm/marketing/meta/connect"))
    assert "Only a tenant admin can connect Meta" in page
    assert "/connect/start" not in page
    response = client.post("/crm/marketing/meta/connect/start")
    assert response.status_code == 403
    assert response.mimetype == "text/html" and "Only a tenant admin can do this" in html(response)


def test_anonymous_visitors_are_sent_to_login(client):
    for path in ("/crm/marketing", "/crm/marketing/meta/connect"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_start_redirects_to_meta_with_the_browser_binding(admin_client, app):
    response = admin_client.post("/crm/marketing/meta/connect/start")
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    query = parse_qs(target.query)
    assert target.path.endswith("/dialog/oauth") and query["state"] and "code_challenge" not in query
    assert "auth_type" not in query
    assert "crm_meta_oauth=" in response.headers["Set-Cookie"]
    again = admin_client.post("/crm/marketing/meta/connect/start", data={"rerequest": "1"})
    assert parse_qs(urlsplit(again.headers["Location"]).query)["auth_type"] == ["rerequest"]


def test_cancel_at_meta_comes_back_to_step_one_with_a_retry(meta_flow):
    response = meta_flow.connect(decision="cancel", accept="text/html")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/crm/marketing/meta/connect?error=oauth_denied")
    page = main(html(meta_flow.client.get(response.headers["Location"])))
    assert 'role="alert"' in page and "You cancelled at Meta" in page
    assert "Try again at Meta" in page and "oauth_denied" not in page


def test_an_expired_state_reads_as_a_message_not_json(admin_client):
    response = admin_client.get("/crm/auth/meta/callback?state=nope&code=x",
                                headers={"Accept": "text/html"})
    assert response.status_code == 302
    page = html(admin_client.get(response.headers["Location"]))
    assert "expired or was started in another browser" in page
    assert "Traceback" not in page and '"success"' not in page


def test_unknown_error_codes_get_a_generic_message(admin_client):
    page = html(admin_client.get("/crm/marketing/meta/connect?error=<script>x</script>"))
    assert "<script>x" not in page
    page = main(page)
    assert "Something went wrong while connecting to Meta" in page
    assert "<script>x" not in page


def test_select_lists_businesses_then_pages_of_accounts(connected):
    client = connected.client
    page = html(client.get("/crm/marketing/meta/connect?step=select"))
    assert ANDINA in radios(page, "business")
    assert "account_id" not in page  # no business chosen yet
    page = html(client.get(f"/crm/marketing/meta/connect?step=select&business={ANDINA}"))
    accounts = radios(page, "account_id")
    assert len(accounts) == 20
    assert re.search(r"Showing 1–20 of 1\d\d", page) and 'rel="next"' in page
    assert "Inactive" in page and "Disabled" in page and "EUR" in page
    second = html(client.get(f"/crm/marketing/meta/connect?step=select&business={ANDINA}&page=2"))
    assert set(radios(second, "account_id")).isdisjoint(accounts)


def test_search_works_without_javascript(connected):
    client = connected.client
    base = f"/crm/marketing/meta/connect?step=select&business={ANDINA}"
    page = html(client.get(base + "&q=busqueda 002"))  # accents folded, every word must match
    assert "Búsqueda 002" in page and "Búsqueda 010" not in page and "Remarketing" not in page
    page = html(client.get(base + "&q=no-such-account"))
    assert "No ad account matches" in page and "Clear the search" in page


def test_choosing_an_account_confirms_and_is_preselected_later(connected):
    client = connected.client
    third = html(client.get(f"/crm/marketing/meta/connect?step=select&business={ANDINA}&page=3"))
    account = radios(third, "account_id")[4]
    response = client.post("/crm/marketing/meta/connect/select",
                           data={"account_id": account, "business_id": ANDINA})
    assert response.status_code == 302 and response.headers["Location"].endswith("step=done")
    done = html(client.get(response.headers["Location"]))
    assert "All set: Meta is connected" in done and account.removeprefix("act_") in done
    assert 'aria-current="step"' in done
    # Back at step 3 the earlier business and account are chosen, on the account's page.
    again = html(client.get("/crm/marketing/meta/connect?step=select"))
    assert checked(again, "business") == [ANDINA]
    assert checked(again, "account_id") == [account] and "Page 3 of" in again
    hub = html(client.get("/crm/marketing"))
    assert 'data-status="connected"' in hub and account.removeprefix("act_") in hub
    assert "Distribuidora Andina" in hub


def test_an_account_outside_the_connection_is_refused_politely(connected):
    client = connected.client
    response = client.post("/crm/marketing/meta/connect/select",
                           data={"account_id": "act_999", "business_id": ANDINA},
                           follow_redirects=True)
    page = html(response)
    assert response.status_code == 200 and "not one this Meta connection can use" in page
    response = client.post("/crm/marketing/meta/connect/select", data={"account_id": "DROP"},
                           follow_redirects=True)
    assert "Choose an ad account from the list" in html(response)


def test_a_user_without_businesses_sees_personal_accounts(meta_flow):
    response = meta_flow.connect(user_id=USER_WITHOUT_BUSINESSES, accept="text/html")
    page = html(meta_flow.client.get(response.headers["Location"]))
    assert checked(page, "business") == ["personal"]
    accounts = radios(page, "account_id")
    assert accounts
    done = meta_flow.client.post("/crm/marketing/meta/connect/select",
                                 data={"account_id": accounts[0], "business_id": "personal"},
                                 follow_redirects=True)
    assert "Personal ad accounts" in html(done)


def test_partial_consent_offers_grant_them(meta_flow, app):
    scopes = [s for s in app.config["META_SCOPES"] if s != "read_insights"]
    response = meta_flow.connect(granted=scopes, accept="text/html")
    page = html(meta_flow.client.get(response.headers["Location"]))
    assert "Some permissions were not granted" in page and "Read insights" in page
    assert 'name="rerequest" value="1"' in page


def test_step_three_needs_a_connection(admin_client):
    response = admin_client.get("/crm/marketing/meta/connect?step=select", follow_redirects=True)
    assert "Connect Meta first" in html(response)
