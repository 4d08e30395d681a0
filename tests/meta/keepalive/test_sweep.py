"""Sweeps on PostgreSQL against the live sandbox: checks, extension, status threshold, faults."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_meta.meta.keepalive import verdicts
from tests.helpers.keepalive import Connections, sweep
from tests.helpers.sandbox import DEBUG_TOKEN, EXCHANGE

pytestmark = pytest.mark.postgres
DAY = 86400
VERSIONED_DEBUG = "/v25.0" + DEBUG_TOKEN


def test_a_sweep_checks_each_due_connection_once_and_records_what_meta_says(pg_app, connections,
                                                                           sandbox, debug_calls):
    conns = [connections.add() for _ in range(5)]
    system = connections.add(type="SYSTEM_USER")

    report = sweep(pg_app)

    assert report.counts()["checked"] == 6
    assert debug_calls() == {c.token_id: 1 for c in [*conns, system]}
    row = connections.row(conns[0])
    assert row.last_checked_at is not None and row.claimed_by is None and row.claimed_until is None
    assert row.data_access_expires_at - row.last_checked_at > timedelta(days=89)
    assert "ads_management" in row.scopes
    assert row.next_check_at - row.last_checked_at == timedelta(hours=6)
    assert connections.row(system).expires_at is None
    # Nothing is due any more: a second sweep asks Meta nothing.
    assert sweep(pg_app).outcomes == []
    assert sum(debug_calls().values()) == 6


def test_a_user_token_near_its_end_is_extended_only_when_the_new_one_lives_longer(pg_app, connections,
                                                                                 sandbox):
    conn = connections.add(expires_in=10 * DAY)
    before = connections.row(conn).expires_at

    # As observed at Meta: the exchange hands back a token that ends at the same moment.
    report = sweep(pg_app)
    assert report.counts()["extended"] == 0
    assert len(sandbox.get("calls")["calls"]) == 3  # debug_token, exchange, debug_token of the new one
    assert connections.token(conn) == conn.token  # not replaced by an equal or worse one
    row = connections.row(conn)
    assert row.extension_attempted_at is not None and row.expires_at == before
    assert row.warnings_sent["token:14"]["sent"] is True

    # Once Meta does push expiry out, the new token is stored (encrypted) and the old one kept no more.
    sandbox.post("config", extend_long_lived=True)
    sandbox.advance(DAY)
    report = sweep(pg_app)
    assert report.counts()["extended"] == 1
    row = connections.row(conn)
    assert row.expires_at - before > timedelta(days=49)
    assert connections.token(conn) != conn.token
    assert [e.outcome for e in connections.audit("meta.keepalive.extend")] == ["success"]


def test_a_failed_exchange_never_costs_the_working_token(pg_app, connections, sandbox):
    conn = connections.add(expires_in=5 * DAY)
    sandbox.fault("/v25.0" + EXCHANGE, code=2, http_status=500, count=10)

    report = sweep(pg_app)

    assert report.counts() == {"checked": 1, "extended": 0, "warned": 1, "failed": 0, "skipped": 0}
    assert connections.token(conn) == conn.token
    assert connections.row(conn).status == "connected"
    assert [e.outcome for e in connections.audit("meta.keepalive.extend")] == ["failure"]


@pytest.mark.parametrize("fault", [
    {"latency_ms": 1500},  # slower than the client's timeout
    {"code": 2, "http_status": 500},
    {"code": 1, "http_status": 503, "is_transient": True},
    {"malformed": True, "http_status": 502},
], ids=["timeout", "5xx", "503", "malformed"])
def test_transient_failures_change_neither_status_nor_token(make_app, postgres_url, sandbox, fault):
    app = make_app(database_url=postgres_url, META_HTTP_TIMEOUT=0.5)
    connections = Connections(app, sandbox)
    conn = connections.add()
    sandbox.fault(VERSIONED_DEBUG, count=3, **fault)  # more than the client's retries

    report = sweep(app)

    assert report.counts()["failed"] == 1
    row = connections.row(conn)
    assert (row.status, row.consecutive_failures, row.last_checked_at) == ("connected", 0, None)
    assert connections.token(conn) == conn.token
    assert row.next_check_at - sandbox_now(app) <= verdicts.RETRY_SOON


def sandbox_now(app):
    with app.app_context():
        from crm_meta.runtime import now

        return now()


def test_throttled_connection_is_skipped_until_meta_allows_it_again(pg_app, connections, sandbox,
                                                                    debug_calls):
    conns = [connections.add() for _ in range(3)]
    sandbox.fault(VERSIONED_DEBUG, code=613, count=1)  # regain access in 5 minutes; app usage 100%

    first = sweep(pg_app)

    [throttled] = [c for c in conns if connections.row(c).status == "throttled"]
    row = connections.row(throttled)
    assert row.throttled_until - sandbox_now(pg_app) <= timedelta(minutes=5)
    assert row.next_check_at == row.throttled_until
    assert connections.token(throttled) == throttled.token
    # Meta said the app's budget is spent: the others were left due for a later sweep (or were
    # already in flight), never hammered.
    assert {o.kind for o in first.outcomes} <= {"throttled_now", "deferred", "skipped", "valid"}
    assert first.counts()["checked"] + first.counts()["skipped"] == 3

    pg_app.extensions["crm_meta"].graph._cooldown_until = None  # no app-wide cool-down left
    sandbox.advance(60)
    second = sweep(pg_app)
    assert throttled.row_id not in {o.row_id for o in second.outcomes}
    assert all(connections.row(c).status == "connected" for c in conns if c is not throttled)

    sandbox.advance(5 * 60)
    third = sweep(pg_app)
    assert [o.row_id for o in third.outcomes if o.checked] == [throttled.row_id]
    assert all(connections.row(c).status == "connected" for c in conns)
    assert all(connections.token(c) == c.token for c in conns)
    assert debug_calls()[throttled.token_id] == 2  # the throttled call, then one after the wait


def test_one_token_error_is_not_enough_two_in_a_row_are_and_recovery_clears_it(pg_app, connections,
                                                                             sandbox):
    conn = connections.add()
    # Meta reports a token's problem inside debug_token's `data` (HTTP 200); a top-level error
    # would be about the app's own credential.
    sandbox.fault(VERSIONED_DEBUG, code=190, error_subcode=460, count=1, inspect_error=True)

    sweep(pg_app)
    row = connections.row(conn)
    assert (row.status, row.consecutive_failures) == ("connected", 1)
    assert row.next_check_at - row.last_checked_at == verdicts.CONFIRM_SOON

    sandbox.advance(16 * 60)
    sweep(pg_app)  # Meta answers normally: the strike is forgotten
    assert (connections.row(conn).status, connections.row(conn).consecutive_failures) == ("connected", 0)

    sandbox.fault(VERSIONED_DEBUG, code=190, error_subcode=460, count=2, inspect_error=True)
    sandbox.advance(7 * 3600)
    sweep(pg_app)
    sandbox.advance(16 * 60)
    sweep(pg_app)
    row = connections.row(conn)
    assert (row.status, row.consecutive_failures) == ("needs_reauth", 2)
    assert connections.token(conn) == conn.token  # never deleted

    sandbox.advance(7 * 3600)
    sweep(pg_app)  # the token was fine all along: back to connected
    assert connections.row(conn).status == "connected"
    events = [(e.details["from"], e.details["to"]) for e in connections.audit("meta.keepalive.status")]
    assert events == [("connected", "needs_reauth"), ("needs_reauth", "connected")]
    changes = connections.audit("meta.keepalive.status_changed")
    assert [e.details["status"] for e in changes] == ["needs_reauth", "connected"]


def test_a_password_change_needs_two_checks_then_asks_to_reconnect(pg_app, connections, sandbox):
    conn, other = connections.add(), connections.add()
    sandbox.post(f"users/{conn.user_id}/invalidate", subcode=460)

    sweep(pg_app)
    assert connections.row(conn).status == "connected"
    sandbox.advance(16 * 60)
    sweep(pg_app)

    row = connections.row(conn)
    assert row.status == "needs_reauth" and row.last_error_code == "190"
    assert connections.token(conn) == conn.token
    assert connections.row(other).status == "connected"


@pytest.mark.parametrize(("subcode", "status"), [(458, "revoked"), (463, "expired")])
def test_meta_saying_removed_or_expired_is_authoritative_at_once(pg_app, connections, sandbox,
                                                                 subcode, status):
    if subcode == 458:
        conn = connections.add()
        sandbox.post(f"users/{conn.user_id}/invalidate", subcode=458)
    else:
        conn = connections.add(expires_in=3600)
        sandbox.advance(2 * 3600)

    sweep(pg_app)

    row = connections.row(conn)
    assert row.status == status
    assert connections.token(conn) == conn.token  # kept: only a reconnect replaces it
    assert row.next_check_at - row.last_checked_at >= timedelta(days=1)
    [notice] = connections.audit("meta.keepalive.status_changed")
    assert notice.details["status"] == status and notice.outcome == "failure"


def test_one_tenants_broken_row_never_stops_the_sweep(pg_app, connections, sandbox, debug_calls):
    good = [connections.add() for _ in range(3)]
    bad = connections.add()
    with pg_app.app_context():
        from crm_meta.infra.database import db
        from crm_meta.models import MetaConnection

        db.session.get(MetaConnection, bad.row_id).token_ciphertext = "not-a-ciphertext"
        db.session.commit()

    report = sweep(pg_app)

    assert sorted(o.kind for o in report.outcomes) == ["crashed", "valid", "valid", "valid"]
    assert connections.row(bad).claimed_by is None  # the claim was handed back
    assert debug_calls() == {c.token_id: 1 for c in good}


def test_a_sweep_after_a_postgresql_restart_retries_its_first_statement(pg_app, connections,
                                                                        postgres_url, caplog):
    """Review 2: after a restart the sweep's first statement failed with an ERROR line, where
    requests retry once on a dead pooled connection. Every pooled connection is cut here
    (pg_terminate_backend), as a restart does."""
    import logging

    import psycopg2

    connections.add()
    assert sweep(pg_app).counts()["checked"] == 1  # the pool now holds live connections
    fresh = connections.add()
    with psycopg2.connect(postgres_url) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            assert cursor.fetchone()[0] >= 1
    admin.close()
    with caplog.at_level(logging.WARNING):
        report = sweep(pg_app)
    assert report.skipped_reason is None and report.counts()["checked"] == 1
    assert connections.row(fresh).last_checked_at is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
