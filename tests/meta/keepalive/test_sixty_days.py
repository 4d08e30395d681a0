"""Left running while the sandbox clock moves 60 days: no connection dies silently."""

from __future__ import annotations

from collections import Counter

import pytest

from crm_meta.auth.principal import mint_jwt
from crm_meta.infra.database import db
from crm_meta.models import NotificationOutbox
from crm_meta.notify import verify
from crm_meta.runtime import of
from tests.helpers.keepalive import Connections, sweep

pytestmark = pytest.mark.postgres
DAY = 86400
SECRET = "webhook-secret-for-tests"


def status_of(app, conn) -> str:
    """What the API (and so the banner) says, by the same clock."""
    token = mint_jwt(app.config["JWT_SECRET_KEY"], tenant_id=conn.tenant_id, sub="u1", role="member")
    response = app.test_client().get("/crm/marketing/token-status",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["status"]


def live_for_sixty_days(app, sandbox, seen: dict | None = None, watch=None):
    """A sweep every day (starting a quarter day in), as the scheduler would run them."""
    sandbox.advance(DAY // 4)
    for day in range(61):
        sweep(app)
        if watch is not None:
            seen[day] = {c.slug: status_of(app, c) for c in watch}
        sandbox.advance(DAY)


def test_sixty_days_give_each_warning_once_then_the_end_is_announced(make_app, postgres_url, sandbox,
                                                                     webhook_sink):
    app = make_app(database_url=postgres_url, NOTIFY_WEBHOOK_URL=webhook_sink.url,
                   NOTIFY_WEBHOOK_SECRET=SECRET)
    connections = Connections(app, sandbox)
    user = connections.add("user-token")  # ~60 days; Meta will not push it out
    system = connections.add("system-user", type="SYSTEM_USER")  # never expires
    sandbox.post("config", data_access_days=45)
    short_access = connections.add("short-access", expires_in=80 * DAY)
    seen: dict = {}

    live_for_sixty_days(app, sandbox, seen, watch=[user, short_access])

    warnings = Counter((e.tenant_id, e.details["kind"], e.details["days"])
                       for e in connections.audit("meta.keepalive.warning"))
    assert warnings == {
        (user.tenant_id, "token", 14): 1, (user.tenant_id, "token", 7): 1, (user.tenant_id, "token", 1): 1,
        (short_access.tenant_id, "data_access", 14): 1, (short_access.tenant_id, "data_access", 7): 1,
        (short_access.tenant_id, "data_access", 1): 1,
    }
    changes = [(e.tenant_id, e.details["status"]) for e in connections.audit("meta.keepalive.status_changed")]
    assert changes == [(short_access.tenant_id, "needs_reauth"), (user.tenant_id, "expired")]
    assert system.tenant_id not in {e.tenant_id for e in connections.audit()
                                    if e.action.startswith("meta.keepalive.")}
    # The banner followed the same clock: expiring in the last week, expired at the end.
    assert seen[45]["user-token"] == "connected" and seen[54]["user-token"] == "expiring"
    assert seen[60]["user-token"] == "expired" and seen[45]["short-access"] == "needs_reauth"

    # Every notice went out once on the signed webhook.
    assert of(app).notifier.flush(timeout=30)
    assert len(webhook_sink.received) == 8
    for headers, body in webhook_sink.received:
        assert verify(SECRET, body, headers)
    assert len({p["id"] for p in webhook_sink.payloads()}) == 8
    assert {p["event"] for p in webhook_sink.payloads()} == {"meta.connection.warning",
                                                            "meta.connection.status_changed"}
    deliveries = connections.audit("meta.notify.delivery")
    assert len(deliveries) == 8 and {d.outcome for d in deliveries} == {"success"}
    with app.app_context():  # every notice went through the outbox and left it delivered
        rows = db.session.scalars(db.select(NotificationOutbox)).all()
        assert sorted(r.id for r in rows) == sorted(p["id"] for p in webhook_sink.payloads())
        assert all(r.delivered_at is not None and r.attempts == 1 for r in rows)


def test_sixty_days_with_meta_extending_tokens_keep_the_connection_without_warnings(pg_app, connections,
                                                                                    sandbox):
    sandbox.post("config", extend_long_lived=True)
    conn = connections.add()

    live_for_sixty_days(pg_app, sandbox)

    row = connections.row(conn)
    assert row.status == "connected" and row.expires_at > row.last_checked_at
    assert connections.token(conn) != conn.token
    assert len(connections.audit("meta.keepalive.extend")) == 1
    assert connections.audit("meta.keepalive.warning") == []
    assert status_of(pg_app, conn) == "connected"
