"""The sweep's database work comes in batches: one claim statement per batch of connections,
one write-back transaction per batch of finished probes, still fenced row by row."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event, update

from crm_meta.infra.database import db
from crm_meta.meta.keepalive import probing, verdicts
from crm_meta.models import MetaConnection
from tests.helpers.keepalive import Connections, sweep

pytestmark = pytest.mark.postgres


def test_a_sweep_costs_less_than_one_statement_per_check(pg_app, connections, sandbox, debug_calls):
    conns = [connections.add() for _ in range(24)]  # three batches at concurrency 8
    seen: Counter = Counter()
    with pg_app.app_context():
        engine = db.engine
    listeners = {"before_cursor_execute": lambda *a: seen.update(["statements"]),
                 "commit": lambda *a: seen.update(["commits"])}
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        report = sweep(pg_app)
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    assert report.counts()["checked"] == len(conns)
    assert debug_calls() == {c.token_id: 1 for c in conns}
    # Per check it used to be a claim share, a fenced read, a locked read, an UPDATE and a COMMIT.
    assert seen["statements"] < len(conns)
    assert seen["commits"] < len(conns) / 2


def test_a_batch_loads_its_tenants_and_admins_once_not_per_row(pg_app, connections, sandbox):
    # Every connection ends in 10 days: each check makes a warning due, which names the tenant
    # and goes to its admins. Their lookup is the write-back batch's single load.
    conns = [connections.add(expires_in=10 * 86400) for _ in range(24)]
    seen: Counter = Counter()

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            if "FROM meta_tokens" in statement and "FOR UPDATE" in statement:
                seen["batch loads"] += 1
            if "FROM tenants" in statement or "FROM users" in statement:
                seen["tenant lookups"] += 1

    with pg_app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        report = sweep(pg_app)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    notices = [n for o in report.outcomes for n in o.notices]
    assert report.counts()["checked"] == len(conns) and len(notices) == len(conns)
    assert {(n.tenant_id, n.tenant_slug, n.recipients) for n in notices} == {
        (c.tenant_id, c.slug, (f"admin@{c.slug}.test",)) for c in conns}
    assert 1 <= seen["batch loads"] < len(conns)
    assert seen["tenant lookups"] == seen["batch loads"]  # one per batch, not one per row


def test_a_reconnect_during_the_check_drops_only_that_verdict(pg_app, connections, sandbox,
                                                              monkeypatch):
    conns = [connections.add() for _ in range(3)]
    target = conns[1]
    probe = probing.probe

    def probe_then_reconnect(graph, token, **kwargs):
        result = probe(graph, token, **kwargs)
        if token == target.token:  # the tenant reconnects while Meta answers about the old token
            with db.engine.begin() as conn:
                conn.execute(update(MetaConnection).where(MetaConnection.id == target.row_id)
                             .values(token_ciphertext=connections.row(target).token_ciphertext[:-4] + "AAAA"))
        return result

    monkeypatch.setattr(probing, "probe", probe_then_reconnect)
    report = sweep(pg_app)

    kinds = {o.row_id: o.kind for o in report.outcomes}
    assert kinds == {conns[0].row_id: "valid", target.row_id: "lost", conns[2].row_id: "valid"}
    row = connections.row(target)
    assert row.last_checked_at is None and row.claimed_by is None  # not recorded, not held
    assert all(connections.row(c).last_checked_at is not None for c in (conns[0], conns[2]))


def test_a_row_that_cannot_be_written_costs_only_its_own_check(pg_app, connections, sandbox,
                                                               monkeypatch):
    conns = [connections.add() for _ in range(4)]
    bad = conns[2]
    apply = verdicts.apply

    def apply_or_fail(row, *args, **kwargs):
        if row.id == bad.row_id:
            raise RuntimeError("cannot record this one")
        return apply(row, *args, **kwargs)

    monkeypatch.setattr(verdicts, "apply", apply_or_fail)
    report = sweep(pg_app)

    assert sorted(o.kind for o in report.outcomes) == ["crashed", "valid", "valid", "valid"]
    assert connections.row(bad).claimed_by is None  # handed back, due again next tick
    assert all(connections.row(c).last_checked_at is not None for c in conns if c is not bad)


def test_a_check_whose_claim_lapsed_before_it_began_is_not_made(make_app, postgres_url, sandbox, debug_calls):
    app = make_app(postgres_url, KEEPALIVE_CLAIM_SECONDS=0)  # every claim lapses at once
    connections = Connections(app, sandbox)
    conns = [connections.add() for _ in range(2)]

    report = sweep(app)

    assert [o.kind for o in report.outcomes] == ["lost", "lost"]
    assert debug_calls() == {}  # nobody asked Meta on a claim that was no longer ours
    assert all(connections.row(c).last_checked_at is None for c in conns)
