"""A tenant's admins see their own audit trail (EN/ES): who, what, when, outcome; filtered and
paged; never a secret, an IP address or another tenant's event; linked from the hub."""

from __future__ import annotations

import re

from crm_meta.infra.database import db
from crm_meta.models import audit
from tests.helpers.users import AuthActions

PAGE = "/crm/marketing/audit"


def seed(app, tenant_id: int, count: int, **fields) -> None:
    with app.app_context():
        for n in range(count):
            audit.record(fields.get("action", "meta.connect"), actor=audit.Actor(f"jwt:{n}", "198.51.100.23"),
                         tenant_id=tenant_id, outcome=fields.get("outcome", "success"),
                         details={"access_token": "EAAneverOnThePage", "n": n})
        db.session.commit()


def test_admins_see_their_own_trail_and_nothing_secret(app, admin_client, tenant, make_tenant):
    other = make_tenant("globex")
    seed(app, tenant.tenant_id, 3)
    seed(app, other.tenant_id, 2, action="meta.disconnect")
    hub = admin_client.get("/crm/marketing").get_data(as_text=True)
    assert 'data-testid="audit-link"' in hub and PAGE in hub
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "Connected Meta" in page and "jwt:2" in page and "Success" in page
    assert "Disconnected Meta" not in page  # the other tenant's
    assert "EAAnever" not in page and "198.51.100.23" not in page


def test_filters_and_paging(app, admin_client, tenant):
    seed(app, tenant.tenant_id, 30)
    seed(app, tenant.tenant_id, 2, action="meta.disconnect", outcome="failure")
    first = admin_client.get(PAGE).get_data(as_text=True)
    assert "Page 1 of 2 (33 events)" in first  # 32 seeded, and the admin's own login
    assert len(re.findall(r"<tr>", first)) == 1 + 25
    second = admin_client.get(f"{PAGE}?page=2").get_data(as_text=True)
    assert len(re.findall(r"<tr>", second)) == 1 + 8 and 'rel="prev"' in second
    failures = admin_client.get(f"{PAGE}?outcome=failure").get_data(as_text=True)
    assert "(2 events)" in failures and "Connected Meta</td>" not in failures
    only = admin_client.get(f"{PAGE}?action=meta.disconnect").get_data(as_text=True)
    assert "(2 events)" in only
    odd = admin_client.get(f"{PAGE}?page=-3&action=<script>&outcome=x")
    assert odd.status_code == 200 and b"<script>" not in odd.data


def test_in_spanish(app, admin_client, tenant):
    seed(app, tenant.tenant_id, 1)
    admin_client.get("/lang/es")
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "Actividad" in page and "Conectó Meta" in page and "Correcto" in page


def test_members_and_anonymous_callers_do_not_get_it(client, tenant):
    assert client.get(PAGE).status_code in (302, 401)
    AuthActions(client).login(tenant.member_email)
    assert client.get(PAGE).status_code == 403
    assert 'data-testid="audit-link"' not in client.get("/crm/marketing").get_data(as_text=True)
