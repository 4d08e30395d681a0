"""Keep-alive sweep benchmark: N connections, Meta (the sandbox) answering after L ms.

    .venv/bin/python bench/sweep_bench.py [--connections 10000] [--latency-ms 100]
                                          [--concurrency 8,32] [--tracemalloc]

The sandbox runs in a process of its own (a threaded werkzeug server, as in development), the
database is a fresh PostgreSQL database (dropped afterwards), and the connections are seeded by
a child process so that the sweeping process's memory figures are the sweep's own. Figures go
to bench/results/sweep.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "sweep.json"
APP_ID = "100000000000999"
APP_SECRET = "bench-app-secret-0123456789abcdef"
REDIRECT_URI = "http://localhost/crm/auth/meta/callback"
SANDBOX_SCRIPT = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from crm_meta.sandbox import create_sandbox_app, serve_in_thread
server = serve_in_thread(create_sandbox_app({APP_ID!r}, {APP_SECRET!r}, {REDIRECT_URI!r}),
                         port=int(sys.argv[1]))
print(server.url, flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", SANDBOX_SCRIPT, str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url:
        raise SystemExit("the sandbox did not start")
    return proc, url


def config(database_url: str, sandbox_url: str, concurrency: int):
    from config import Config

    return Config({}, SQLALCHEMY_DATABASE_URI=database_url, META_APP_ID=APP_ID,
                  META_APP_SECRET=APP_SECRET, META_REDIRECT_URI=REDIRECT_URI, META_MODE="sandbox",
                  META_GRAPH_URL=sandbox_url, META_DIALOG_URL=sandbox_url, RATELIMIT_ENABLED=False,
                  KEEPALIVE_CONCURRENCY=concurrency, ENCRYPTION_KEY="bench-encryption-key",
                  SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_size": concurrency + 4,
                                             "max_overflow": 4})


def seed(database_url: str, sandbox_url: str, count: int) -> None:
    """Child process: schema, tenants, and one sandbox-minted connection each."""
    from crm_meta import create_app
    from crm_meta.extensions import db
    from crm_meta.meta.store import TokenStore
    from crm_meta.models import MetaToken, Tenant

    app = create_app(config(database_url, sandbox_url, 8))
    session = requests.Session()
    with app.app_context():
        db.create_all()
        store = TokenStore(app.extensions["crm_meta"].cipher)
        for start in range(0, count, 500):
            tenants = [Tenant(name=f"Bench {i}", slug=f"bench-{i}")
                       for i in range(start, min(count, start + 500))]
            db.session.add_all(tenants)
            db.session.flush()
            for tenant in tenants:
                minted = session.post(f"{sandbox_url}/_sandbox/tokens", json={}, timeout=10).json()
                row = MetaToken(tenant_id=tenant.id, warnings_sent={}, status="connected",
                                scopes=list(app.config["META_SCOPES"]),
                                expires_at=datetime.fromtimestamp(minted["expires_at"], UTC))
                store.write(row, minted["access_token"])
                db.session.add(row)
            db.session.commit()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    # ru_maxrss: kilobytes on Linux, bytes on macOS; a high-water mark of the whole process.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def baseline(database_url: str, sandbox_url: str, concurrency: int, latency_ms: int) -> dict:
    """The floor on this machine: the same debug_token calls from a bare thread pool (no
    database, no claims), through the same GraphClient and the same sandbox."""
    from concurrent.futures import ThreadPoolExecutor

    from crm_meta import create_app
    from crm_meta.extensions import db
    from crm_meta.meta import tokens
    from crm_meta.meta.store import TokenStore
    from crm_meta.models import MetaToken

    app = create_app(config(database_url, sandbox_url, concurrency))
    with app.app_context():
        store = TokenStore(app.extensions["crm_meta"].cipher)
        secrets = [store.read(row) for row in db.session.scalars(db.select(MetaToken))]
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


def run(database_url: str, sandbox_url: str, concurrency: int, latency_ms: int, use_tracemalloc: bool,
        scheduled: bool) -> dict:
    from sqlalchemy import update

    from crm_meta import create_app
    from crm_meta.extensions import db
    from crm_meta.models import MetaToken

    app = create_app(config(database_url, sandbox_url, concurrency))
    with app.app_context():
        db.session.execute(update(MetaToken).values(next_check_at=None, last_checked_at=None))
        db.session.commit()
        count = db.session.query(MetaToken).count()
    requests.delete(f"{sandbox_url}/_sandbox/calls", timeout=10)
    requests.post(f"{sandbox_url}/_sandbox/config", json={"latency_ms": latency_ms}, timeout=10)
    gc.collect()
    rss_before = rss_mb()
    if use_tracemalloc:
        tracemalloc.start()
    cpu_before = _cpu()
    started = time.perf_counter()
    from crm_meta.meta import sweep as sweeping

    if scheduled:  # the scheduler's path: due query, cluster lock, claims
        report = sweeping.run_sweep(app)
    else:  # `flask meta refresh`: every connection, claims only
        with app.app_context():
            ids = [row_id for (row_id,) in db.session.query(MetaToken.id)]
        report = sweeping.run_sweep(app, row_ids=ids, forced=True)
    elapsed = time.perf_counter() - started
    cpu = _cpu() - cpu_before
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
        "cpu_seconds": round(cpu, 1),
        "cpu_ms_per_check": round(cpu * 1000 / max(1, counts["checked"]), 2),
        "counts": counts,
        "graph_calls": len(calls),
        "debug_token_calls": len(debug_calls),
        "distinct_tokens_checked": len({c["token_id"] for c in debug_calls}),
        "peak_rss_mb_before": rss_before,
        "peak_rss_mb_after": rss_mb(),
        "tracemalloc_peak_mb": traced_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", default="8", help="comma-separated, e.g. 8,32")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations "
                        "(slower; gives the sweep's own peak)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-calls floor")
    parser.add_argument("--database", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"crm_meta_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(args.database).set(database=name).render_as_string(hide_password=False)
    sandbox, sandbox_url = start_sandbox()
    try:
        requests.post(f"{sandbox_url}/_sandbox/config", timeout=10, json={
            "app_call_budget": 10**9, "call_log_limit": 10**6})  # measure the sweep, not Meta's budget
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=seed, args=(database_url, sandbox_url, args.connections))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("seeding failed")
        print(f"seeded {args.connections} connections in {time.perf_counter() - started:.1f}s",
              flush=True)
        runs = []
        if not args.no_baseline:  # in a child process: its memory is not the sweep's
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
                floor = child.submit(baseline, database_url, sandbox_url,
                                     int(args.concurrency.split(",")[0]), args.latency_ms).result()
            print(json.dumps(floor), flush=True)
            runs.append(floor)
        for index, concurrency in enumerate(int(c) for c in args.concurrency.split(",")):
            result = run(database_url, sandbox_url, concurrency, args.latency_ms, args.tracemalloc,
                         scheduled=index == 0)
            print(json.dumps(result), flush=True)
            runs.append(result)
    finally:
        sandbox.terminate()
        sandbox.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "runs": runs,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
