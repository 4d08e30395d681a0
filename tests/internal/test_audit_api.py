"""The CRM's audit tab reads a tenant's trail (scope audit:read), in its `system_events` shape:
`items`/`total`, filters `event_type` and `severity`, paging by `limit`/`offset`; never a secret."""

from __future__ import annotations

import pytest

from crm_meta.infra.database import db
from crm_meta.models import audit

AUDIT = "/internal/meta/connections/{}/audit"


@pytest.fixture
def trail(app, make_tenant):
    acme, beta = make_tenant("acme"), make_tenant("beta")
    with app.app_context():
        for n in range(7):
            audit.record("meta.connect", actor=audit.Actor(f"jwt:{n}", "203.0.113.9"),
                         tenant_id=acme.tenant_id, outcome="success" if n % 2 else "failure",
                         details={"n": n, "access_token": "EAAsecretnevershown", "status": "connected"})
        audit.record("meta.disconnect", actor="user:1", tenant_id=beta.tenant_id)
        db.session.commit()
    return acme, beta


def get(client, key, ref, **query):
    return client.get(AUDIT.format(ref), headers=key.headers, query_string=query)


def test_a_page_of_the_tenants_own_events_in_system_events_shape(client, make_key, trail):
    acme, _beta = trail
    key = make_key("crm", scopes=("audit:read",))
    response = get(client, key, "acme", limit=3)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    data = response.get_json()["data"]
    assert data["total"] == 7 and len(data["items"]) == 3
    first = data["items"][0]
    assert first["event_type"] == "meta.connect" and first["tenant_id"] == acme.tenant_id
    assert first["payload"]["actor"] == "jwt:6" and first["severity"] == "error"
    text = response.get_data(as_text=True)
    assert "EAAsecret" not in text and "203.0.113.9" not in text
    rest = get(client, key, "acme", limit=3, offset=6).get_json()["data"]["items"]
    assert [e["payload"]["actor"] for e in rest] == ["jwt:0"]
    errors = get(client, key, acme.tenant_id, severity="error").get_json()["data"]
    assert errors["total"] == 4 and {e["severity"] for e in errors["items"]} == {"error"}
    assert get(client, key, "acme", event_type="meta.disconnect").get_json()["data"]["total"] == 0


def test_other_scopes_and_limited_keys_are_refused(app, client, make_key, runner, trail):
    other = make_key("marketing", scopes=("credentials:read", "graph:proxy"))
    assert get(client, other, "acme").get_json()["error"]["code"] == "insufficient_scope"
    result = runner.invoke(args=["services", "create", "crm", "--scope", "audit:read", "--tenant", "beta"])
    headers = {"Authorization": f"Bearer {result.stdout.splitlines()[0]}"}
    assert client.get(AUDIT.format("acme"), headers=headers).status_code == 403
    assert client.get(AUDIT.format("beta"), headers=headers).get_json()["data"]["total"] == 1


@pytest.mark.parametrize("query", [{"limit": "0x10"}, {"limit": "101"}, {"limit": "0"}, {"offset": "-1"},
                                   {"severity": "critical"}])
def test_bad_filters_are_422(client, make_key, trail, query):
    key = make_key("crm", scopes=("audit:read",))
    response = get(client, key, "acme", **query)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_filter"
