"""Proxy overhead: the same Graph call through /graph/ (the drop-in gateway), /internal/.../graph/
and straight to Meta (the sandbox).

    .venv/bin/python bench/proxy_bench.py [--requests 2000] [--concurrency 1,16] [--workers 2]

crm-meta runs as it is deployed: gunicorn (gthread workers), PostgreSQL (a throwaway database,
dropped afterwards), the rate governor in Redis, `META_MODE=live` pointed at the sandbox, which
runs in a process of its own. The load comes from this process: N timed GETs of an ad account's
campaigns per mode and concurrency, after a warm-up, direct and proxied in alternating rounds so
that both see the same machine. A third mode, crm-meta's `/healthz` under the same gunicorn,
shows the floor of any request to crm-meta (the extra HTTP hop, gunicorn and Flask).
Figures go to bench/results/proxy.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import APP_ID, APP_SECRET, REDIRECT_URI, SandboxProcess, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "proxy.json"
ACCOUNT, BUSINESS = "act_301000001000001", "2010000000000001"
PATH = f"{ACCOUNT}/campaigns"
PARAMS = {"fields": "name,status,objective"}
ENCRYPTION_KEY = "bench-encryption-key"


def settings(database_url: str, sandbox_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    """The environment crm-meta is served with (and seeded with)."""
    return {"APP_ENV": "development", "DATABASE_URL": database_url, "META_MODE": "live",
            "META_GRAPH_URL": sandbox_url, "META_DIALOG_URL": sandbox_url, "META_APP_ID": APP_ID,
            "META_APP_SECRET": APP_SECRET, "META_REDIRECT_URI": REDIRECT_URI,
            "ENCRYPTION_KEY": ENCRYPTION_KEY, "REDIS_URL": redis_url, "META_GOVERNOR_KEY_PREFIX": prefix,
            "RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING", "SCHEDULER_ENABLED": "0"}


def seed(env: dict[str, str], sandbox_url: str) -> tuple[str, str, str]:
    """Schema, one connected tenant with a selected ad account, one service key and its gateway
    token for the tenant; (key, gateway token, Meta token)."""
    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.auth import gateway_tokens as tokens
    from crm_meta.infra.database import db
    from crm_meta.internal import keys
    from crm_meta.meta.store import TokenStore
    from crm_meta.models import MetaConnection, Tenant

    app = create_app(config_from_env(env))
    minted = requests.post(f"{sandbox_url}/_sandbox/tokens", json={}, timeout=10).json()
    account = {"id": ACCOUNT, "account_id": ACCOUNT[4:], "name": "Bench", "business_id": BUSINESS}
    with app.app_context():
        db.create_all()
        tenant = Tenant(name="Bench", slug="bench")
        db.session.add(tenant)
        db.session.flush()
        row = MetaConnection(tenant_id=tenant.id, warnings_sent={}, status="connected",
                        scopes=list(app.config["META_SCOPES"]),
                        expires_at=datetime.fromtimestamp(minted["expires_at"], UTC),
                        business_managers=[{"id": BUSINESS, "name": "Bench", "ad_accounts": [account]}],
                        selected_ad_account_id=ACCOUNT, selected_business_id=BUSINESS)
        TokenStore(app.extensions["crm_meta"].cipher).write(row, minted["access_token"])
        db.session.add(row)
        db.session.commit()
        issued = keys.create("bench", ["graph:proxy"])
        gateway = tokens.issue(service_key_id=issued.row.id, service="bench", tenant_id=tenant.id,
                               secret=app.config["SECRET_KEY"])
        db.session.remove()
        db.engine.dispose()
    return issued.key, gateway, minted["access_token"]


def serve(env: dict[str, str], workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads), "GUNICORN_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py",
                             "--access-logfile", "/dev/null", "wsgi:app"], cwd=ROOT, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("crm-meta did not start under gunicorn")


def run(target, count: int, concurrency: int) -> list[float]:
    """`count` timed calls of `target(session)` from `concurrency` threads; latencies in ms."""
    local = threading.local()
    latencies: list[float] = []
    lock = threading.Lock()

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        response = target(local.session)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
        with lock:
            latencies.append(elapsed)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float], seconds: float) -> dict:
    return {"requests": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "mean_ms": round(statistics.fmean(latencies), 2),
            "requests_per_s": round(len(latencies) / seconds, 1)}


def load() -> dict:
    one, five, fifteen = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "uptime": uptime}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed calls per mode and concurrency")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--database", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    name = f"crm_meta_proxy_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(args.database).set(database=name).render_as_string(hide_password=False)
    sandbox = SandboxProcess()
    sandbox_url = sandbox.url
    server = None
    try:
        big = 10**9  # the budgets never run out: this measures the proxy, not Meta's limits
        requests.post(f"{sandbox_url}/_sandbox/config", timeout=10, json={
            "app_call_budget": big, "business_call_budget": big, "ad_account_call_budget": big})
        env = settings(database_url, sandbox_url, args.redis, f"bench-governor:{uuid.uuid4().hex[:8]}")
        key, gateway_token, token = seed(env, sandbox_url)
        server, crm_url = serve(env, args.workers, args.threads)
        from crm_meta.meta.graph import appsecret_proof

        direct_params = {**PARAMS, "appsecret_proof": appsecret_proof(APP_SECRET, token)}

        def direct(session):
            return session.get(f"{sandbox_url}/v25.0/{PATH}", params=direct_params, timeout=30,
                               headers={"Authorization": f"Bearer {token}"})

        def hop(session):  # the floor of any crm-meta request: gunicorn and Flask, no work
            return session.get(f"{crm_url}/healthz", timeout=30)

        def proxied(session):
            return session.get(f"{crm_url}/internal/meta/connections/bench/graph/{PATH}", params=PARAMS,
                               timeout=30, headers={"Authorization": f"Bearer {key}"})

        gateway_params = {**PARAMS, "access_token": gateway_token}

        def gateway(session):  # the drop-in endpoint, the token where Graph clients put it
            return session.get(f"{crm_url}/graph/v25.0/{PATH}", params=gateway_params, timeout=30)

        before = load()
        cases = []
        for concurrency in levels:
            modes = {"direct": direct, "hop": hop, "proxy": proxied, "gateway": gateway}
            found: dict[str, list[float]] = {mode: [] for mode in modes}
            spent = dict.fromkeys(modes, 0.0)
            for target in modes.values():
                run(target, 50 * concurrency, concurrency)  # warm-up: connections, pools
            for _ in range(2):  # alternate, so every mode shares the machine's ups and downs
                for mode, target in modes.items():
                    started = time.perf_counter()
                    found[mode] += run(target, args.requests // 2, concurrency)
                    spent[mode] += time.perf_counter() - started
            direct_s = summary(found["direct"], spent["direct"])
            proxy_s = summary(found["proxy"], spent["proxy"])
            gateway_s = summary(found["gateway"], spent["gateway"])
            case = {"concurrency": concurrency, "direct": direct_s, "proxy": proxy_s, "gateway": gateway_s,
                    "hop_healthz": summary(found["hop"], spent["hop"]),
                    "overhead_p50_ms": round(proxy_s["p50_ms"] - direct_s["p50_ms"], 2),
                    "overhead_p99_ms": round(proxy_s["p99_ms"] - direct_s["p99_ms"], 2),
                    "gateway_overhead_p50_ms": round(gateway_s["p50_ms"] - direct_s["p50_ms"], 2),
                    "gateway_overhead_p99_ms": round(gateway_s["p99_ms"] - direct_s["p99_ms"], 2)}
            cases.append(case)
            print(json.dumps(case))
        result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "load_before": before,
            "load_after": load()}, "gunicorn": {"workers": args.workers, "threads": args.threads},
            "call": f"GET {PATH}?fields={PARAMS['fields']}", "cases": cases}
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written {RESULTS}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        sandbox.proc.terminate()
        sandbox.proc.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
