"""Real OS processes sweeping the same PostgreSQL database and the same live sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crm_meta.infra.database import db
from crm_meta.meta.keepalive import leases
from crm_meta.models import MetaConnection
from tests.helpers.keepalive import sweep
from tests.helpers.settings import ROOT
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.postgres
SHARED = ("SQLALCHEMY_DATABASE_URI", "META_APP_ID", "META_APP_SECRET", "META_REDIRECT_URI", "META_MODE",
          "META_DIALOG_URL", "META_GRAPH_URL", "ENCRYPTION_KEY", "SECRET_KEY", "JWT_SECRET_KEY",
          "META_HTTP_RETRIES", "META_SCOPES", "RATELIMIT_ENABLED", "KEEPALIVE_CONCURRENCY",
          "KEEPALIVE_CLAIM_SECONDS")


def start_sweepers(app, tmp_path: Path, mode: str, count: int, **overrides) -> list[subprocess.Popen]:
    """Start `count` processes, each building the app; release them together once all are ready."""
    settings = {key: app.config[key] for key in SHARED} | overrides
    go = tmp_path / "go"
    procs, ready = [], []
    for index in range(count):
        ready.append(tmp_path / f"ready-{index}")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.meta.keepalive.sweeper", json.dumps(settings), mode,
             str(ready[-1]), str(go)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))

    def all_ready():
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a sweeper exited early: {proc.communicate()[1][-2000:]}")
        return all(path.exists() for path in ready)

    wait_for(all_ready, "the sweepers to start")
    go.touch()
    return procs


def results(procs: list[subprocess.Popen]) -> list[dict]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def claimed(app) -> list[MetaConnection]:
    with app.app_context():
        claimed = db.select(MetaConnection).where(MetaConnection.claimed_by.is_not(None))
        rows = list(db.session.scalars(claimed))
        db.session.expunge_all()
        return rows


@pytest.mark.parametrize("mode", ["lock", "claims"])
def test_three_processes_sweeping_at_once_check_each_connection_exactly_once(
        pg_app, connections, sandbox, tmp_path, mode, debug_calls):
    conns = [connections.add() for _ in range(24)]
    sandbox.post("config", latency_ms=25)  # long enough for the sweeps to overlap

    outcome = results(start_sweepers(pg_app, tmp_path, mode, 3, KEEPALIVE_CONCURRENCY=4))

    assert debug_calls() == {c.token_id: 1 for c in conns}
    assert sum(r["counts"]["checked"] for r in outcome) == 24
    assert claimed(pg_app) == []
    if mode == "lock":  # whoever lost the race for the lock did nothing at all
        assert all(r["counts"]["checked"] == 0 for r in outcome if r["skipped_reason"])


def test_a_process_killed_mid_sweep_leaves_nothing_locked_for_ever(pg_app, connections, sandbox,
                                                                    tmp_path, debug_calls):
    conns = [connections.add() for _ in range(12)]
    sandbox.post("config", latency_ms=400)
    [proc] = start_sweepers(pg_app, tmp_path, "lock", 1, KEEPALIVE_CONCURRENCY=2)
    wait_for(lambda: claimed(pg_app), "the sweeper to claim connections")

    proc.kill()
    proc.communicate(timeout=30)  # reap it and close its pipes
    sandbox.post("config", latency_ms=0)

    # The advisory lock died with the killed process's database session.
    def lock_is_free():
        with pg_app.app_context():
            lock = leases.ClusterLock(db.engine)
            if lock.acquire():
                lock.release()
                return True
        return False

    wait_for(lock_is_free, "PostgreSQL to release the dead session's advisory lock")
    held = claimed(pg_app)
    assert held, "the process died holding claims"
    lease = pg_app.config["KEEPALIVE_CLAIM_SECONDS"]
    with pg_app.app_context():
        from crm_meta.runtime import now

        horizon = now().timestamp() + lease
    assert all(row.claimed_until.timestamp() <= horizon for row in held)

    # Within the lease a sweep leaves the dead process's claims alone...
    first = sweep(pg_app)
    assert not {row.id for row in held} & {o.row_id for o in first.outcomes if o.checked}
    # ...and once it lapses they are checked, and nothing stays claimed.
    sandbox.advance(lease + 1)
    sweep(pg_app)
    assert claimed(pg_app) == []
    for conn in conns:
        assert debug_calls()[conn.token_id] >= 1
        assert connections.row(conn).last_checked_at is not None
        assert connections.token(conn) == conn.token
