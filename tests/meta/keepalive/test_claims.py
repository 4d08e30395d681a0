"""Claims and fencing, step by step, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_meta.infra.database import db
from crm_meta.meta.keepalive import leases
from crm_meta.models import MetaConnection
from crm_meta.runtime import now

pytestmark = pytest.mark.postgres
LEASE = timedelta(minutes=5)


def test_a_claim_is_exclusive_until_it_lapses_and_a_stale_holder_is_fenced_out(pg_app, connections):
    conn = connections.add()
    with pg_app.app_context():
        at = now()
        assert leases.claim([conn.row_id], "host-a:1:aaaa", at, LEASE, due_only=True) == {conn.row_id}
        assert leases.claim([conn.row_id], "host-b:2:bbbb", at, LEASE, due_only=True) == set()
        assert leases.fence(conn.row_id, "host-b:2:bbbb") is None
        row = leases.fence(conn.row_id, "host-a:1:aaaa")
        assert row is not None
        ciphertext = row.token_ciphertext
        db.session.rollback()

        later = at + LEASE + timedelta(seconds=1)  # host a stalled past its lease
        assert leases.claim([conn.row_id], "host-b:2:bbbb", later, LEASE, due_only=True) == {conn.row_id}
        assert leases.fence(conn.row_id, "host-a:1:aaaa", ciphertext=ciphertext) is None  # fenced out
        db.session.rollback()
        assert leases.fence(conn.row_id, "host-b:2:bbbb", ciphertext=ciphertext) is not None
        db.session.rollback()


def test_a_reconnect_during_a_check_wins_over_the_checks_answer(pg_app, connections, sandbox):
    conn = connections.add()
    with pg_app.app_context():
        at = now()
        assert leases.claim([conn.row_id], "host-a:1:aaaa", at, LEASE, due_only=True)
        ciphertext = leases.fence(conn.row_id, "host-a:1:aaaa").token_ciphertext
        db.session.rollback()
        row = db.session.get(MetaConnection, conn.row_id)  # the tenant reconnects meanwhile
        row.token_ciphertext = row.token_ciphertext[:-4] + "AAAA"
        db.session.commit()
        assert leases.fence(conn.row_id, "host-a:1:aaaa", ciphertext=ciphertext) is None
        db.session.rollback()


def test_claims_from_a_clock_that_went_back_are_not_locks_for_weeks(pg_app, connections):
    conn = connections.add()
    with pg_app.app_context():
        at = now()
        future = at + timedelta(days=60)  # claimed while the sandbox clock was 60 days ahead
        assert leases.claim([conn.row_id], "host-a:1:aaaa", future, LEASE, due_only=False)
        assert leases.claim([conn.row_id], "host-b:2:bbbb", at, LEASE, due_only=False) == {conn.row_id}


def test_a_sweep_does_not_claim_what_is_not_due(pg_app, connections):
    conn = connections.add()
    with pg_app.app_context():
        db.session.get(MetaConnection, conn.row_id).next_check_at = now() + timedelta(hours=1)
        db.session.commit()
        assert leases.claim([conn.row_id], "host-a:1:aaaa", now(), LEASE, due_only=True) == set()
        assert leases.claim([conn.row_id], "host-a:1:aaaa", now(), LEASE, due_only=False) == {conn.row_id}
