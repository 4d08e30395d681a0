"""Least privilege and a trail of refusals (review 2): `--tenant` limits a key to those tenants,
a key without it says it is multi-tenant, and every refused key attempt is audited (which key
prefix, which route, why), never with more of the key than its displayed prefix; a flood of
refusals is a bounded trail (a row per prefix and reason a minute, a few per client, and counts)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from crm_meta.internal import keys
from crm_meta.models import AuditEvent
from tests.helpers.database import audit_events
from tests.helpers.users import add_tenant

CREDENTIALS = "/internal/meta/connections/{}/credentials"


def create(runner, *args) -> str:
    result = runner.invoke(args=["services", "create", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def refusals(app) -> list[AuditEvent]:
    return audit_events(app, "service_key.refused")


def test_a_key_limited_to_tenants_opens_only_those(app, client, runner, connect):
    acme, beta, gamma = connect("acme"), connect("beta"), connect("gamma")
    key = create(runner, "leads", "--scope", "credentials:read", "--tenant", "acme",
                 "--tenant", str(beta.tenant_id))
    headers = {"Authorization": f"Bearer {key}"}
    for ref in ("acme", str(acme.tenant_id), "beta"):
        assert client.get(CREDENTIALS.format(ref), headers=headers).status_code == 200, ref
    refused = client.get(CREDENTIALS.format("gamma"), headers=headers)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "tenant_not_allowed"
    assert "EAA" not in refused.get_data(as_text=True)
    [event] = refusals(app)
    assert event.details["reason"] == "tenant_not_allowed" and event.details["prefix"] == key[:12]
    assert event.actor == "service:leads"  # the key's owner is known
    assert event.tenant_id == gamma.tenant_id  # and gamma's admins see the attempt
    listing = runner.invoke(args=["services", "list"]).output
    assert "tenants acme,beta" in listing


def test_a_key_without_tenant_stays_multi_tenant_and_says_so(client, runner, connect):
    connect("acme")
    connect("beta")
    key = create(runner, "marketing", "--scope", "credentials:read")
    for ref in ("acme", "beta"):
        assert client.get(CREDENTIALS.format(ref), headers={"Authorization": f"Bearer {key}"}
                          ).status_code == 200
    assert "all tenants (multi-tenant)" in runner.invoke(args=["services", "list"]).output


def test_an_unknown_tenant_is_refused_at_creation(runner, make_tenant):
    make_tenant("acme")
    result = runner.invoke(args=["services", "create", "leads", "--scope", "graph:proxy",
                                 "--tenant", "ghost"])
    assert result.exit_code != 0 and "ghost" in result.output
    assert "no service keys" in runner.invoke(args=["services", "list"]).output


@pytest.mark.parametrize("authorization, reason, prefix", [
    (None, "service_key_required", None),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "service_key_required", None),
    ("Bearer cms_typed-by-hand", "invalid_service_key", None),
    ("Bearer cms_" + "A" * 43, "invalid_service_key", "cms_AAAAAAAA"),
])
def test_refused_attempts_are_audited_with_prefix_route_and_reason(app, client, make_tenant,
                                                                   authorization, reason, prefix):
    make_tenant("acme")
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(CREDENTIALS.format("acme"), headers=headers)
    assert response.status_code == 401
    [event] = refusals(app)
    assert event.outcome == "refused"
    assert event.details == {"prefix": prefix, "route": "/internal/meta/connections/<tenant>/credentials",
                             "method": "GET", "reason": reason, "tenant_ref": "acme"}
    if authorization:
        secret = authorization.split(" ", 1)[1]
        assert secret not in repr(event.details) + event.actor


def test_revoked_and_out_of_scope_keys_are_audited_with_their_service(app, client, runner, connect):
    connect("acme")
    key = create(runner, "marketing", "--scope", "graph:proxy")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(CREDENTIALS.format("acme"), headers=headers).status_code == 403
    runner.invoke(args=["services", "revoke", "marketing"])
    assert client.get(CREDENTIALS.format("acme"), headers=headers).status_code == 401
    events = refusals(app)
    assert [e.details["reason"] for e in events] == ["insufficient_scope", "service_key_revoked"]
    assert all(e.details["prefix"] == key[:12] and key not in repr(e.details) for e in events)


# -- a flood of refused attempts: a bounded trail (review follow-up) --------------------------
WRONG = "Bearer cms_" + "A" * 43


@pytest.fixture
def limited(make_app, monkeypatch):
    """(app, later): rate limiting on, with its own in-memory counters, whose clock `later(s)`
    moves on by s seconds (the limiter's windows follow it)."""
    import limits.storage.memory as memory

    offset = [0.0]
    monkeypatch.setattr(memory, "time", SimpleNamespace(time=lambda: time.time() + offset[0],
                                                        sleep=time.sleep, monotonic=time.monotonic))
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    add_tenant(app, "acme")

    def later(seconds: float) -> None:
        offset[0] += seconds

    return app, later


def refused_key(client, authorization: str, address: str = "10.0.0.1"):
    response = client.get(CREDENTIALS.format("acme"), headers={"Authorization": authorization},
                          environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 401
    return response


def not_audited() -> float:
    return REGISTRY.get_sample_value("meta_service_key_refusals_total",
                                     {"reason": "invalid_service_key", "audited": "no"}) or 0.0


def test_a_flood_of_one_wrong_key_is_one_row_a_minute_with_a_count(limited):
    app, later = limited
    client, before = app.test_client(), not_audited()
    for _ in range(30):
        refused_key(client, WRONG)
    [first] = refusals(app)  # the first one, at once
    assert first.details["prefix"] == "cms_AAAAAAAA" and "repeats" not in first.details
    assert not_audited() - before == 29  # every one counted, in the metric
    later(61)
    refused_key(client, WRONG)
    first, second = refusals(app)
    assert second.details["repeats"] == 29  # the ones not written since the first row
    refused_key(client, "Bearer cms_" + "B" * 43)  # another key's first refusal: a row of its own
    assert [e.details["prefix"] for e in refusals(app)][-1] == "cms_BBBBBBBB"


def test_many_keys_from_one_client_are_bounded_and_another_clients_first_is_kept(limited):
    app, _ = limited
    client = app.test_client()
    for n in range(40):  # a new wrong key each time: each its own prefix
        refused_key(client, f"Bearer cms_{n:08d}" + "x" * 35)
    rows = refusals(app)
    assert len(rows) == keys.AUDIT_PER_CLIENT.amount  # the client's first ones, then no more rows
    refused_key(client, WRONG, address="10.0.0.2")
    assert refusals(app)[-1].ip == "10.0.0.2"
