"""The hub shows the connection's channels and lets an admin choose them (English and Spanish)."""

from __future__ import annotations

from tests.helpers.responses import csrf_token_from

FIRST_PAGE = "1090000000000001"
PHONE = "1160000000000001"
WABA = "1150000000000001"


def test_the_hub_lists_channels_and_an_admin_chooses_them(connected, client, sandbox):
    page = client.get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="channels"' in page and "Messaging channels" in page
    assert f'value="{FIRST_PAGE}"' in page and f'value="{PHONE}"' in page
    assert "+34 600 000 001" in page
    response = client.post("/crm/marketing/meta/channels", data={
        "csrf_token": csrf_token_from(page), "asset_id": [FIRST_PAGE, PHONE]}, follow_redirects=True)
    shown = response.get_data(as_text=True)
    assert "2 channels are active." in shown
    # The wizard's grant has no pages_manage_metadata: the Page's webhooks are left out, and said.
    assert "left out" in shown
    assert set(sandbox.get("subscriptions")["data"]) == {WABA}
    assert f'value="{PHONE}" checked' in shown


def test_members_see_channels_but_cannot_choose(connected, client, auth, tenant):
    auth.logout()
    auth.login(tenant.member_email)
    page = client.get("/crm/marketing").get_data(as_text=True)
    assert f'value="{FIRST_PAGE}" disabled' in page and "Save channels" not in page
    refused = client.post("/crm/marketing/meta/channels", data={"asset_id": FIRST_PAGE})
    assert refused.status_code == 403


def test_the_channels_speak_spanish(connected, client):
    page = client.get("/crm/marketing", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Canales de mensajería" in page and "Páginas de Facebook" in page
    response = client.post("/crm/marketing/meta/channels", headers={"Accept-Language": "es"},
                           data={"csrf_token": csrf_token_from(page)}, follow_redirects=True)
    assert "Elige al menos un canal." in response.get_data(as_text=True)
