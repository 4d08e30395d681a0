"""Keep-alive sweep helpers shared by sweep_bench.py and sweep_cluster_bench.py: the app's
config against a sandbox, seeding connections, and one measured sweep (each meant to run in
a child process of its own, see _common.in_child)."""

from __future__ import annotations

import gc
import time
import tracemalloc
from datetime import UTC, datetime

import requests
from _common import APP_ID, APP_SECRET, REDIRECT_URI, cpu_seconds, peak_rss_mb


def bench_config(database_url: str, sandbox_url: str, concurrency: int, **overrides):
    """The product's Config in sandbox mode against the sandbox process, with a pool large
    enough for `concurrency` workers plus the lock and the dispatcher."""
    from config import Config

    engine = dict(Config({}).SQLALCHEMY_ENGINE_OPTIONS)  # the product's own pool settings...
    engine.update(pool_size=concurrency + 4, max_overflow=4)  # ...sized for the sweep
    settings = dict(SQLALCHEMY_DATABASE_URI=database_url, META_APP_ID=APP_ID,
                    META_APP_SECRET=APP_SECRET, META_REDIRECT_URI=REDIRECT_URI, META_MODE="sandbox",
                    META_GRAPH_URL=sandbox_url, META_DIALOG_URL=sandbox_url, RATELIMIT_ENABLED=False,
                    KEEPALIVE_CONCURRENCY=concurrency, ENCRYPTION_KEY="bench-encryption-key",
                    SQLALCHEMY_ENGINE_OPTIONS=engine)
    return Config({}, **(settings | overrides))


def seed(database_url: str, sandbox_url: str, count: int) -> list[tuple[int, str]]:
    """Schema, `count` tenants, and one sandbox-minted connection each (stored encrypted
    through TokenStore). Returns (row id, the sandbox's token id) per connection."""
    from crm_meta.app import create_app
    from crm_meta.infra.database import db
    from crm_meta.meta.store import TokenStore
    from crm_meta.models import MetaConnection, Tenant

    app = create_app(bench_config(database_url, sandbox_url, 8))
    session = requests.Session()
    seeded = []
    with app.app_context():
        db.create_all()
        store = TokenStore(app.extensions["crm_meta"].cipher)
        for start in range(0, count, 500):
            tenants = [Tenant(name=f"Bench {i}", slug=f"bench-{i}")
                       for i in range(start, min(count, start + 500))]
            db.session.add_all(tenants)
            db.session.flush()
            batch = []
            for tenant in tenants:
                minted = session.post(f"{sandbox_url}/_sandbox/tokens", json={}, timeout=10).json()
                row = MetaConnection(tenant_id=tenant.id, warnings_sent={}, status="connected",
                                scopes=list(app.config["META_SCOPES"]),
                                expires_at=datetime.fromtimestamp(minted["expires_at"], UTC))
                store.write(row, minted["access_token"])
                db.session.add(row)
                batch.append((row, minted["token_id"]))
            db.session.flush()
            seeded += [(row.id, token_id) for row, token_id in batch]
            db.session.commit()
    return seeded


def baseline(database_url: str, sandbox_url: str, concurrency: int, latency_ms: int) -> dict:
    """The floor on this machine: the same debug_token calls from a bare thread pool (no
    database, no claims), through the same GraphClient and the same sandbox."""
    from concurrent.futures import ThreadPoolExecutor

    from crm_meta.app import create_app
    from crm_meta.infra.database import db
    from crm_meta.meta import tokens
    from crm_meta.meta.store import TokenStore
    from crm_meta.models import MetaConnection

    app = create_app(bench_config(database_url, sandbox_url, concurrency))
    with app.app_context():
        store = TokenStore(app.extensions["crm_meta"].cipher)
        secrets = [store.read(row) for row in db.session.scalars(db.select(MetaConnection))]
    graph = app.extensions["crm_meta"].graph
    requests.post(f"{sandbox_url}/_sandbox/config", json={"latency_ms": latency_ms}, timeout=10)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        valid = sum(info.is_valid for info in pool.map(lambda t: tokens.inspect(graph, t), secrets))
    elapsed = time.perf_counter() - started
    requests.post(f"{sandbox_url}/_sandbox/config", json={"latency_ms": 0}, timeout=10)
    requests.delete(f"{sandbox_url}/_sandbox/calls", timeout=10)
    ideal = len(secrets) * latency_ms / 1000 / concurrency
    return {"path": "baseline: bare debug_token calls, no database", "connections": len(secrets),
            "latency_ms": latency_ms, "concurrency": concurrency, "seconds": round(elapsed, 2),
            "ideal_seconds": round(ideal, 2), "vs_ideal": round(elapsed / ideal, 3) if ideal else None,
            "valid": valid}


def measure_sweep(database_url: str, sandbox_url: str, concurrency: int, latency_ms: int, *,
                  scheduled: bool = True, use_tracemalloc: bool = False) -> dict:
    """Every connection due, then one sweep in this process: wall time against the ideal
    (connections x latency / concurrency), CPU per check (getrusage), memory, Graph calls.

    `scheduled`: the scheduler's path (due query, cluster lock, claims); otherwise
    `flask meta refresh`'s (every connection, claims only)."""
    from sqlalchemy import update

    from crm_meta.app import create_app
    from crm_meta.infra.database import db
    from crm_meta.meta.keepalive import sweep as sweeping
    from crm_meta.models import MetaConnection
    from crm_meta.runtime import of

    app = create_app(bench_config(database_url, sandbox_url, concurrency))
    with app.app_context():
        db.session.execute(update(MetaConnection).values(next_check_at=None, last_checked_at=None,
                                                    claimed_by=None, claimed_until=None))
        db.session.commit()
        count = db.session.query(MetaConnection).count()
        ids = [row_id for (row_id,) in db.session.query(MetaConnection.id)]
    requests.delete(f"{sandbox_url}/_sandbox/calls", timeout=10)
    requests.post(f"{sandbox_url}/_sandbox/config", json={"latency_ms": latency_ms}, timeout=10)
    gc.collect()
    rss_before = peak_rss_mb()
    if use_tracemalloc:
        tracemalloc.start()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    if scheduled:
        report = sweeping.run_sweep(app, of(app))
    else:
        report = sweeping.run_sweep(app, of(app), sweeping.Scope(row_ids=ids, forced=True))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    traced_peak = None
    if use_tracemalloc:
        traced_peak = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    requests.post(f"{sandbox_url}/_sandbox/config", json={"latency_ms": 0}, timeout=10)
    calls = requests.get(f"{sandbox_url}/_sandbox/calls", timeout=60).json()["calls"]
    debug_calls = [c for c in calls if c["path"].endswith("/debug_token")]
    ideal = count * latency_ms / 1000 / concurrency
    counts = report.counts()
    return {
        "path": "scheduled sweep (lock + claims)" if scheduled else "refresh (claims only)",
        "connections": count,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "ideal_seconds": round(ideal, 2),
        "vs_ideal": round(elapsed / ideal, 3) if ideal else None,
        "checks_per_second": round(counts["checked"] / elapsed, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_check": round(cpu * 1000 / max(1, counts["checked"]), 2),
        "counts": counts,
        "graph_calls": len(calls),
        "debug_token_calls": len(debug_calls),
        "distinct_tokens_checked": len({c["token_id"] for c in debug_calls}),
        "peak_rss_mb_before": rss_before,
        "peak_rss_mb_after": peak_rss_mb(),
        "tracemalloc_peak_mb": traced_peak,
    }
