"""The hub shows the connection's lead access (the last lead read's verdict) in English and
Spanish: a refusal as an alert naming what to fix, a working one as a line."""

from __future__ import annotations

import pytest

from crm_meta.meta.webhooks import leads
from crm_meta.runtime import of

REFUSED = "(#200) The user does not have leads access on this Page (Leads Access Manager)"


@pytest.fixture
def verdict(app, tenant, connected):
    """Record a lead read's verdict as the forwarder does."""

    def record(state: str, error: str | None = None):
        with app.app_context():
            leads.record_access(tenant.tenant_id, state, error, of(app).clock.now())

    return record


def test_no_lead_read_yet_shows_nothing(connected, client):
    assert 'data-testid="leads-access"' not in client.get("/crm/marketing").get_data(as_text=True)


def test_a_blocked_page_is_an_alert_naming_the_fix(verdict, client):
    verdict("blocked", REFUSED)
    page = client.get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="leads-access" data-state="blocked"' in page
    assert "Meta refuses to give your leads to the CRM" in page and "Leads Access Manager" in page
    # The wizard's grant has none of the lead permissions beyond the defaults: they are named.
    assert "<code>leads_retrieval</code>" in page and "<code>pages_manage_ads</code>" in page


def test_a_missing_permission_says_reconnect(verdict, client):
    verdict("permission_missing", "(#200) Requires leads_retrieval permission")
    page = client.get("/crm/marketing").get_data(as_text=True)
    assert 'data-state="permission_missing"' in page
    assert "reconnects and grants it" in page and "Requires leads_retrieval permission" in page


def test_lead_access_speaks_spanish(verdict, client):
    verdict("blocked", REFUSED)
    page = client.get("/crm/marketing", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Meta se niega a entregar tus clientes potenciales al CRM" in page
    assert "Permisos para leer clientes potenciales que le faltan a la conexión:" in page
    verdict("ok")
    page = client.get("/crm/marketing", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert 'data-state="ok"' in page and "Los clientes potenciales de Meta llegan al CRM" in page


def test_members_see_it_too(verdict, client, auth, tenant):
    verdict("blocked", REFUSED)
    auth.logout()
    auth.login(tenant.member_email)
    assert 'data-state="blocked"' in client.get("/crm/marketing").get_data(as_text=True)
