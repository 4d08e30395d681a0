"""The in-process scheduler and `flask meta refresh`."""

from __future__ import annotations

import threading
import time

import pytest

from crm_meta import jobs
from crm_meta.infra.database import db
from crm_meta.meta.keepalive import leases
from crm_meta.meta.keepalive.verdicts import Settings
from tests.helpers.keepalive import sweep
from tests.helpers.sandbox import EXCHANGE
from tests.tools.configs import config_values

DAY = 86400


def test_the_scheduler_starts_only_when_asked_once_per_process_and_stops_cleanly(make_app):
    assert jobs.start_if_enabled(make_app()) is None and jobs._scheduler is None

    app = make_app(SCHEDULER_ENABLED=True)
    assert jobs._scheduler is None  # the factory never starts one: the entry point does
    scheduler = jobs.start_if_enabled(app)
    assert scheduler is jobs._scheduler and scheduler.running
    assert jobs.start(app) is scheduler  # idempotent
    by_id = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(by_id) == ["meta.discovery", "meta.keepalive.sweep", "meta.notify.outbox",
                             "meta.webhooks", "meta.webhooks.subscription"]
    assert by_id["meta.webhooks"].trigger.interval.total_seconds() == 10
    assert by_id["meta.discovery"].trigger.interval.total_seconds() == 30
    assert by_id["meta.webhooks.subscription"].trigger.interval.total_seconds() == 15 * 60  # the default
    sweep_job, outbox_job = by_id["meta.keepalive.sweep"], by_id["meta.notify.outbox"]
    assert sweep_job.trigger.interval.total_seconds() == 15 * 60
    assert outbox_job.trigger.interval.total_seconds() == 60
    assert sweep_job.args[0] is app and outbox_job.args[0] is app

    jobs.shutdown()
    assert not scheduler.running and jobs._scheduler is None
    jobs.shutdown()  # twice is fine (atexit calls it again)


def test_flask_jobs_run_hosts_the_jobs_until_stopped(make_app, monkeypatch):
    app = make_app()
    run_forever = jobs.run_forever
    hosted = []
    monkeypatch.setattr(jobs, "run_forever", hosted.append)
    result = app.test_cli_runner().invoke(args=["jobs", "run"])
    assert result.exit_code == 0, result.output
    assert hosted == [app] and "meta.keepalive.sweep" in result.output

    stop = threading.Event()
    host = threading.Thread(target=run_forever, args=(app, stop))
    host.start()
    try:
        for _ in range(500):
            if jobs._scheduler is not None:
                break
            time.sleep(0.01)
        assert jobs._scheduler is not None and jobs._scheduler.running
    finally:
        stop.set()
        host.join(30)
    assert not host.is_alive() and jobs._scheduler is None


def test_job_ids_are_unique_and_stable():
    ids = [spec.id for spec in jobs.JOBS]
    assert ids == ["meta.keepalive.sweep", "meta.notify.outbox", "meta.webhooks",
                   "meta.webhooks.subscription", "meta.discovery"]
    assert len(set(ids)) == len(ids)
    assert Settings.from_config(config_values(KEEPALIVE_INTERVAL_HOURS=0.1)).wake_every.total_seconds() == 360


def test_a_tick_sweeps_due_connections_on_sqlite(app, sqlite_connections, sandbox, debug_calls):
    conns = [sqlite_connections.add() for _ in range(3)]
    jobs.keepalive_tick(app)
    assert debug_calls() == {c.token_id: 1 for c in conns}


def test_on_sqlite_one_sweep_at_a_time_per_process(app, sqlite_connections, sandbox):
    sqlite_connections.add()
    with app.app_context():
        lock = leases.ClusterLock(db.engine)
        assert lock.acquire()
        try:
            report = sweep(app)
            assert report.skipped_reason and report.outcomes == []
        finally:
            lock.release()
    assert sweep(app).counts()["checked"] == 1


@pytest.mark.postgres
def test_the_advisory_lock_is_exclusive_across_sessions(pg_app):
    with pg_app.app_context():
        first, second = leases.ClusterLock(db.engine), leases.ClusterLock(db.engine)
        assert first.acquire()
        try:
            assert not second.acquire()
        finally:
            first.release()
        assert second.acquire()
        second.release()


def refresh(app, *args):
    # `flask` (FlaskGroup) pushes an app context for every command; the test runner's plain
    # AppGroup does so only for AppGroup commands, so do what `flask` does.
    with app.app_context():
        return app.test_cli_runner().invoke(args=["meta", "refresh", *args])


def test_refresh_checks_every_connection_due_or_not_with_a_summary(app, sqlite_connections, sandbox,
                                                                   debug_calls):
    conns = [sqlite_connections.add() for _ in range(3)]
    sweep(app)  # nothing is due after this

    result = refresh(app)

    assert result.exit_code == 0, result.output
    assert "Checking connections" in result.output
    header, values = result.output.splitlines()[-4], result.output.splitlines()[-2]
    assert [c.strip() for c in header.split("|")[1:-1]] == ["checked", "extended", "warned", "failed",
                                                           "skipped"]
    assert [c.strip() for c in values.split("|")[1:-1]] == ["3", "0", "0", "0", "0"]
    assert debug_calls() == {c.token_id: 2 for c in conns}


def test_refresh_one_tenant(app, sqlite_connections, sandbox, debug_calls):
    mine, other = sqlite_connections.add("mine"), sqlite_connections.add("other")
    result = refresh(app, "--tenant", "mine")
    assert result.exit_code == 0, result.output
    assert debug_calls() == {mine.token_id: 1}
    assert other.token_id not in debug_calls()
    unknown = refresh(app, "--tenant", "nobody")
    assert unknown.exit_code != 0 and "no tenant with slug 'nobody'" in unknown.output


def test_refresh_dry_run_changes_nothing_and_never_exchanges(app, sqlite_connections, sandbox):
    conn = sqlite_connections.add(expires_in=60 * DAY)
    sandbox.advance(50 * DAY)  # the CLI follows the sandbox clock: 10 days left
    before = sqlite_connections.row(conn)

    result = refresh(app, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "would warn" in result.output
    assert result.output.splitlines()[-2].split("|")[1:-1][2].strip() == "1"
    after = sqlite_connections.row(conn)
    for column in ("last_checked_at", "next_check_at", "warnings_sent", "status", "token_ciphertext",
                   "extension_attempted_at", "data_access_expires_at", "claimed_by"):
        assert getattr(after, column) == getattr(before, column), column
    assert sqlite_connections.audit() == []
    assert not [c for c in sandbox.get("calls")["calls"] if c["path"].endswith(EXCHANGE)]

    result = refresh(app)  # for real this time: warned, and the extension was tried
    assert result.output.splitlines()[-2].split("|")[1:-1][2].strip() == "1"
    assert [c for c in sandbox.get("calls")["calls"] if c["path"].endswith(EXCHANGE)]


def test_refresh_names_the_connections_that_need_attention(app, sqlite_connections, sandbox):
    sqlite_connections.add("fine")
    gone = sqlite_connections.add("gone")
    sandbox.post(f"users/{gone.user_id}/invalidate", subcode=458)

    result = refresh(app)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "  gone: token invalid; connected -> revoked"
    assert "fine" not in result.output
