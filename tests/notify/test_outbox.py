"""Durable notices: the outbox is written with the check and delivered at least once, by any process."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from crm_meta import jobs, notify
from crm_meta.notify import Notice, RetryPolicy, channels
from crm_meta.notify import outbox as outbox_module
from crm_meta.runtime import of
from tests.helpers.database import audit_events
from tests.helpers.keepalive import Connections, sweep
from tests.helpers.users import add_tenant
from tests.tools.clock import FrozenClock
from tests.tools.configs import config_values

DAY = 86400
SECRET = "webhook-secret-for-tests"
NOW = FrozenClock().now()


def hooked(make_app, database_url=None, *, schema=True, **overrides):
    """An app whose notices go to `NOTIFY_WEBHOOK_URL`, never sleeping between in-call retries."""
    app = make_app(database_url, schema=schema, NOTIFY_WEBHOOK_SECRET=SECRET, **overrides)
    of(app).notifier.sleep = lambda seconds: None
    return app


# -- pure rules ------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_its_cap():
    policy = replace(RetryPolicy.from_config(config_values()), base=timedelta(minutes=1),
                     cap=timedelta(minutes=10))
    assert [policy.delay(n) for n in range(1, 7)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10)]
    assert policy.delay(10_000) == timedelta(minutes=10)
    assert RetryPolicy.from_config(config_values(NOTIFY_MAX_ATTEMPTS=3, NOTIFY_RETRY_BASE_SECONDS=30)) == \
        RetryPolicy(max_attempts=3, base=timedelta(seconds=30), cap=timedelta(hours=6),
                    lease=timedelta(minutes=5), keep=timedelta(days=7))


def test_a_row_rebuilds_its_notice_recipients_included():
    notice = Notice.create(event="status_changed", tenant_id=7, status="needs_reauth", now=NOW,
                           previous_status="connected", tenant_slug="acme", tenant_name="Acme",
                           recipients=("a@acme.test", "b@acme.test"))
    [row] = notify.outbox_rows([notice], NOW)
    assert (row.id, row.next_attempt_at, row.attempts) == (notice.id, NOW, 0)
    assert "id" not in row.payload and row.payload["recipients"] == ["a@acme.test", "b@acme.test"]
    assert notify.to_notice(row) == notice
    row.payload = {**row.payload, "added_by_a_later_version": 1}
    assert notify.to_notice(row) == notice


# -- written with the check ------------------------------------------------------------------------
def test_the_warning_and_its_outbox_row_are_one_commit_and_nothing_is_queued_without_a_channel(
        make_app, sandbox, webhook_sink, outbox):
    quiet = make_app()
    conn = Connections(quiet, sandbox).add(expires_in=5 * DAY)
    assert sweep(quiet).counts()["warned"] == 1
    assert outbox(quiet) == []  # no webhook, no SMTP: the banner and the audit trail only

    app = hooked(make_app, NOTIFY_WEBHOOK_URL=webhook_sink.url)
    connections = Connections(app, sandbox)
    conn = connections.add(expires_in=5 * DAY)
    assert sweep(app, row_ids=[conn.row_id], forced=True, dry_run=True).counts()["warned"] == 1
    assert outbox(app) == []  # a dry run queues nothing
    sweep(app)
    [warning] = connections.audit("meta.keepalive.warning")
    [row] = outbox(app)
    assert row.id == warning.details["notice"] and row.tenant_id == conn.tenant_id
    assert row.payload["recipients"] == [f"admin@{conn.slug}.test"]
    assert of(app).notifier.flush(timeout=30)  # the sweep woke the sender; it delivered
    assert webhook_sink.delivery_ids() == [row.id]
    assert outbox(app)[0].delivered_at is not None


# -- a crash between the commit and the delivery ----------------------------------------------------
@pytest.mark.postgres
def test_a_notice_committed_by_a_process_that_died_is_delivered_by_the_next_one(
        make_app, postgres_url, sandbox, webhook_sink, monkeypatch, outbox):
    first = hooked(make_app, postgres_url, NOTIFY_WEBHOOK_URL=webhook_sink.url)
    connections = Connections(first, sandbox)
    conn = connections.add(expires_in=5 * DAY)
    with monkeypatch.context() as patch:  # the process dies right after the sweep's commit
        patch.setattr(notify, "dispatch", lambda app, notices: 0)
        assert sweep(first).counts()["warned"] == 1
    [warning] = connections.audit("meta.keepalive.warning")
    assert webhook_sink.hits == 0 and outbox(first)[0].delivered_at is None

    restarted = hooked(make_app, postgres_url, schema=False, NOTIFY_WEBHOOK_URL=webhook_sink.url)
    jobs.outbox_tick(restarted)  # the outbox job of whichever process runs next

    assert webhook_sink.delivery_ids() == [warning.details["notice"]]
    [payload] = webhook_sink.payloads()
    assert (payload["tenant"]["id"], payload["kind"], payload["days"]) == (conn.tenant_id, "token", 7)
    [row] = outbox(restarted)
    assert row.delivered_at is not None and (row.attempts, row.last_outcome) == (1, "webhook=delivered")
    [delivery] = connections.audit("meta.notify.delivery")
    assert delivery.details["notice"] == row.id and delivery.outcome == "success"
    jobs.outbox_tick(restarted)
    assert webhook_sink.hits == 1  # delivered rows are never sent again


def test_a_killed_senders_lease_lapses_by_the_clock_and_nothing_is_stranded(make_app, sandbox, webhook_sink,
                                                                            outbox, queue_notices):
    app = hooked(make_app, NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_CLAIM_SECONDS=300)
    [notice_id] = queue_notices(app, add_tenant(app, "acme").tenant_id)
    from crm_meta.runtime import runtime

    with app.app_context():  # a sender claims the row, then is SIGKILLed mid-delivery
        assert outbox_module._claim(notice_id, "dead-host:4242:feedbeef", runtime().clock.now(),
                             timedelta(seconds=300))

    jobs.outbox_tick(app)
    assert webhook_sink.hits == 0  # still leased to the dead sender
    sandbox.advance(301)
    jobs.outbox_tick(app)

    assert webhook_sink.delivery_ids() == [notice_id]
    [row] = outbox(app)
    assert row.delivered_at is not None and row.attempts == 2 and row.claimed_by is None


# -- two senders at once ---------------------------------------------------------------------------
@pytest.mark.postgres
def test_senders_racing_in_separate_threads_and_engines_deliver_each_notice_exactly_once(
        make_app, postgres_url, sandbox, webhook_sink, outbox, queue_notices):
    apps = [hooked(make_app, postgres_url, schema=(i == 0), NOTIFY_WEBHOOK_URL=webhook_sink.url)
            for i in range(3)]
    tenant = add_tenant(apps[0], "acme")
    ids = queue_notices(apps[0], tenant.tenant_id, count=60)
    start = threading.Barrier(len(apps))
    results: list = [None] * len(apps)

    def sender(index: int) -> None:
        start.wait()
        results[index] = notify.deliver_due(apps[index], sender=of(apps[index]).notifier)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(webhook_sink.delivery_ids()) == sorted(ids)  # each once: no duplicate, none lost
    assert webhook_sink.hits == len(ids)
    assert sum(r["delivered"] for r in results) == len(ids)
    assert all(set(r) <= {"delivered", "busy"} for r in results)
    assert {(r.attempts, r.claimed_by) for r in outbox(apps[0])} == {(1, None)}
    assert len(audit_events(apps[0], "meta.notify.delivery")) == len(ids)


# -- failures --------------------------------------------------------------------------------------
def test_a_failing_webhook_is_retried_on_later_runs_with_backoff_then_given_up(make_app, sandbox,
                                                                               webhook_sink, outbox,
                                                                               queue_notices):
    app = hooked(make_app, NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_MAX_ATTEMPTS=3,
                 NOTIFY_RETRY_BASE_SECONDS=600)
    webhook_sink.status = 503
    [notice_id] = queue_notices(app, add_tenant(app, "acme").tenant_id)
    per_attempt = channels.WEBHOOK_ATTEMPTS  # the in-call retries of one attempt

    jobs.outbox_tick(app)  # attempt 1 fails: next in 10 minutes
    assert webhook_sink.hits == per_attempt
    assert (outbox(app)[0].attempts, outbox(app)[0].last_outcome) == (1, "webhook=failed:503")
    jobs.outbox_tick(app)
    assert webhook_sink.hits == per_attempt  # not due yet
    sandbox.advance(600)
    jobs.outbox_tick(app)  # attempt 2 fails: next in 20 minutes
    assert webhook_sink.hits == 2 * per_attempt and outbox(app)[0].attempts == 2
    sandbox.advance(600)
    jobs.outbox_tick(app)
    assert webhook_sink.hits == 2 * per_attempt  # the wait doubled
    sandbox.advance(600)
    jobs.outbox_tick(app)  # attempt 3 of 3 fails: given up

    assert webhook_sink.hits == 3 * per_attempt
    [row] = outbox(app)
    assert (row.attempts, row.next_attempt_at, row.delivered_at) == (3, None, None)
    assert row.last_outcome == "webhook=failed:503"
    [gave_up] = audit_events(app, "meta.notify.gave_up")
    assert gave_up.outcome == "failure" and gave_up.details["notice"] == notice_id
    assert gave_up.details["webhook"] == "failed:503" and audit_events(app, "meta.notify.delivery") == []
    webhook_sink.status = 200
    sandbox.advance(30 * DAY)
    jobs.outbox_tick(app)
    assert webhook_sink.hits == 3 * per_attempt and outbox(app)[0].next_attempt_at is None


def test_a_retry_sends_only_the_channels_that_failed(make_app, sandbox, webhook_sink, outbox, queue_notices,
                                                     fake_smtp):
    app = hooked(make_app, NOTIFY_WEBHOOK_URL=webhook_sink.url, SMTP_HOST="smtp.example",
                 NOTIFY_RETRY_BASE_SECONDS=60)
    of(app).notifier.smtp_factory = fake_smtp
    webhook_sink.statuses = [500] * channels.WEBHOOK_ATTEMPTS
    [notice_id] = queue_notices(app, add_tenant(app, "acme").tenant_id)

    jobs.outbox_tick(app)
    [row] = outbox(app)
    assert row.channels_done == ["email"] and row.delivered_at is None
    assert row.last_outcome == "webhook=failed:500 email=delivered"
    sandbox.advance(60)
    jobs.outbox_tick(app)

    assert len(fake_smtp.sent) == 1 and fake_smtp.sent[0][1]["Message-ID"] == f"<{notice_id}@crm-meta>"
    assert webhook_sink.delivery_ids() == [notice_id]
    [row] = outbox(app)
    assert row.channels_done == ["email", "webhook"] and row.delivered_at is not None


def test_delivered_notices_are_pruned_after_the_keep_days_and_given_up_ones_stay(make_app, sandbox,
                                                                                 webhook_sink, outbox,
                                                                                 queue_notices):
    app = hooked(make_app, NOTIFY_WEBHOOK_URL=webhook_sink.url, NOTIFY_MAX_ATTEMPTS=1,
                 NOTIFY_OUTBOX_KEEP_DAYS=7)
    tenant_id = add_tenant(app, "acme").tenant_id
    webhook_sink.status = 503
    [given_up] = queue_notices(app, tenant_id)
    jobs.outbox_tick(app)
    webhook_sink.status = 200
    [delivered] = queue_notices(app, tenant_id)
    jobs.outbox_tick(app)
    assert {r.id: (r.delivered_at is not None) for r in outbox(app)} == {given_up: False, delivered: True}

    sandbox.advance(6 * DAY)
    jobs.outbox_tick(app)
    assert len(outbox(app)) == 2
    sandbox.advance(2 * DAY)
    jobs.outbox_tick(app)
    assert [r.id for r in outbox(app)] == [given_up]
