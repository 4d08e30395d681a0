"""API benchmark: crm-meta's `GET /crm/marketing/token-status` (with its status cache, as
deployed, and without it) beside a Flask-Dance-style peer and a bare Flask endpoint, same
gunicorn settings, same machine, one run.

    .venv/bin/python bench/api_bench.py [--duration 10] [--rounds 3]
                                        [--only crm-meta,crm-meta-uncached,peer,bare]
                                        [--database URL] [--count-only]

All servers run at once under gunicorn with gunicorn.conf.py (2 workers x 4 gthreads) and are
loaded in turn, round after round, with `wrk -t2 -c16 -d<duration>s --latency`, so a change in
the machine's load weighs on all alike; requests/s, p50/p99 latency, the ratio to the bare
endpoint (overall and per round), the workers' CPU per request and RSS are printed and written
to bench/results/api.json. crm-meta runs in live mode against a throwaway PostgreSQL database,
its Graph API pointed at the sandbox (in a process of its own); a child process connects the
tenant through the app's own OAuth flow. Database round trips per request are counted on the
wire (bench/_pgwire.py), and the status cache's cross-process invalidation is timed
(bench/_statuscache.py). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from _common import (
    APP_ID,
    APP_SECRET,
    DEFAULT_DATABASE,
    REDIRECT_URI,
    RESULTS,
    ROOT,
    SandboxProcess,
    children,
    free_port,
    in_child,
    load_average,
    machine,
    proc_cpu_seconds,
    proc_rss_mb,
    stop,
    throwaway_database,
    write_results,
)
from _roundtrips import count_round_trips
from _statuscache import invalidation_latency

# crm-meta as deployed (its status cache on), crm-meta with STATUS_CACHE_SECONDS=0 (one
# database round trip per request), the peer, and the bare floor.
ENDPOINTS = ("crm-meta", "crm-meta-uncached", "peer", "bare")
UNCACHED = {"STATUS_CACHE_SECONDS": "0"}
PATH = "/crm/marketing/token-status"
WORKERS, THREADS = 2, 4
TARGETS = {"crm-meta": "wsgi:app", "crm-meta-uncached": "wsgi:app", "peer": "bench.peer_app:create_app()",
           "bare": "bench.bare_app:create_app()"}
WRK_MISSING = ("wrk is not installed: `apt-get update && apt-get install -y wrk` (Debian package "
               "`wrk`), or run with --count-only for the database round trips alone")
# `--plain`: the same flags for every server, none of the product's gunicorn.conf.py.
# (`--config /dev/null`: gunicorn would otherwise read ./gunicorn.conf.py by default.)
PLAIN_FLAGS = ["--config", "/dev/null", "--workers", str(WORKERS), "--worker-class", "gthread",
               "--threads", str(THREADS), "--log-level", "warning"]
KEEP_ENV = {"PATH", "HOME", "LANG", "TMPDIR", "TZ", "VIRTUAL_ENV", "USER"}
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
MIN_SHARE = 0.25  # each of the two workers does at least this part of a counted round's work


def crm_env(database_url: str, sandbox_url: str) -> dict:
    """crm-meta as deployed (APP_ENV=production, live mode), Meta's hosts pointed at the sandbox."""
    return {"APP_ENV": "production", "DATABASE_URL": database_url, "META_MODE": "live",
            "META_GRAPH_URL": sandbox_url, "META_DIALOG_URL": sandbox_url, "META_APP_ID": APP_ID,
            "META_APP_SECRET": APP_SECRET, "META_REDIRECT_URI": REDIRECT_URI,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "JWT_SECRET_KEY": "bench-jwt-secret-0123456789abcdef",
            "ENCRYPTION_KEY": "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMhISE",
            "SCHEDULER_ENABLED": "0"}  # token-status alone: no sweep in the served workers


def seed_crm(env: dict, businesses: int, accounts: int) -> dict:
    """Child process: migrate, create the tenant, connect it through the app's own OAuth flow
    (dialog and Graph in the sandbox), select an ad account; mint the admin JWT."""
    from urllib.parse import urlsplit

    from flask_migrate import upgrade

    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.auth.principal import mint_jwt
    from crm_meta.cli import create_tenant

    requests.post(f"{env['META_GRAPH_URL']}/_sandbox/config", timeout=120,
                  json={"businesses": businesses, "ad_accounts_per_business": accounts})
    app = create_app(config_from_env(env))
    with app.app_context():
        upgrade()
        tenant = create_tenant("Bench Ventas", "bench-ventas")
        token = mint_jwt(app.config["JWT_SECRET_KEY"], tenant_id=tenant.id, sub="1", role="admin",
                         ttl=30 * 24 * 3600)
        tenant_id = tenant.id
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    https = {"base_url": "https://localhost"}  # production cookies are Secure
    started = client.get("/crm/auth/meta/url", headers=auth, **https)
    assert started.status_code == 200, started.get_data(as_text=True)[:500]
    consent = requests.post(started.get_json()["data"]["auth_url"], allow_redirects=False, timeout=60,
                            data={"decision": "approve", "granted": app.config["META_SCOPES"]})
    query = urlsplit(consent.headers["Location"]).query
    done = client.get(f"/crm/auth/meta/callback?{query}", headers={"Accept": "application/json"},
                      **https)
    assert done.status_code == 200, done.get_data(as_text=True)[:500]
    business = done.get_json()["data"]["business_managers"][0]
    chosen = client.post("/crm/marketing/connect", headers=auth, **https,
                         json={"account_id": business["ad_accounts"][0]["id"],
                               "business_id": business["id"]})
    assert chosen.status_code == 200, chosen.get_data(as_text=True)[:500]
    status = client.get(PATH, headers=auth, **https)
    data = status.get_json()["data"]
    expires = data["expires_at"]
    return {"tenant_id": tenant_id, "jwt": token, "status": data["status"],
            "business_managers": data["business_managers"], "ad_accounts": data["ad_accounts"],
            "status_response_bytes": len(status.get_data()),
            "expires_at_epoch": int(_epoch(expires)) if expires else 0, "scopes": data["scopes"]}


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# -- serving and loading -----------------------------------------------------------------------
def serve(name: str, env: dict, port: int, log: Path, plain: bool = False) -> subprocess.Popen:
    """gunicorn with the project's gunicorn.conf.py, bound to loopback, access log discarded;
    `plain`: every server with the same plain flags instead (no gunicorn.conf.py, no access log)."""
    # Only the shell's basics: a REDIS_URL or META_* left in the shell must not change the app.
    environ = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith("LC_")}
    environ |= env | {"HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_WORKERS": str(WORKERS),
                      "GUNICORN_THREADS": str(THREADS), "GUNICORN_LOG_LEVEL": "warning"}
    with log.open("ab") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn",
             *(PLAIN_FLAGS + ["--bind", f"127.0.0.1:{port}"] if plain
               else ["-c", str(ROOT / "gunicorn.conf.py")]),
             "--name", f"bench-{name}", TARGETS[name]],
            cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=errors)


def wait_ready(proc: subprocess.Popen, url: str, headers: dict, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            response = requests.get(url, headers=headers, timeout=30)  # a first request on a busy box
            if response.status_code == 200 and len(children(proc.pid)) >= WORKERS:
                body = response.json()
                if body.get("success") is not True:
                    raise SystemExit(f"unexpected answer: {str(body)[:300]}")
                return
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not come up: {log.read_text()[-2000:]}")


def run_wrk(url: str, headers: dict, duration: int, threads: int, connections: int) -> dict:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command + [url], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr.strip()[:500]}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> dict:
    def number(pattern: str) -> float | None:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else None

    latency = {f"p{p}_ms": round(float(v) * UNITS[u], 2)
               for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"requests_per_second": number(r"Requests/sec:\s+([\d.]+)"),
            "p50_ms": latency.get("p50_ms"), "p99_ms": latency.get("p99_ms"),
            "requests": int(number(r"(\d+) requests in") or 0),
            "non_2xx": int(number(r"Non-2xx or 3xx responses:\s+(\d+)") or 0),
            "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}


def bench_all(names: list[str], envs: dict, headers: dict, args, logs: Path) -> dict:
    """Serve every server at once and load them in turn, round after round: a change in the
    machine's load (other work on the box) weighs on all of them alike."""
    servers, profile = {}, None
    try:
        for name in names:
            port = free_port()
            url = f"http://127.0.0.1:{port}{PATH}"
            proc = serve(name, envs[name], port, logs / f"{name}.log", args.plain)
            servers[name] = (proc, url)
            wait_ready(proc, url, headers, logs / f"{name}.log")
        for _, url in servers.values():
            if args.warmup:
                run_wrk(url, headers, args.warmup, args.threads, args.connections)
        rounds: dict = {name: [] for name in names}
        rss: dict = {name: {} for name in names}
        for index in range(args.rounds):
            for name, (proc, url) in servers.items():
                rounds[name] += one_round(name, index + 1, proc, url, headers, args, rss[name])
        if args.profile and "crm-meta" in servers:
            profile = profile_under_load(*servers["crm-meta"], headers, args)
    finally:
        for proc, _ in servers.values():
            stop(proc, grace=30)
    results = {}
    for name in names:
        counted = [r for r in rounds[name] if r["balanced"]] or rounds[name]
        results[name] = {
            "rounds": rounds[name], "rounds_counted": len(counted),
            "mean_requests_per_second": round(
                sum(r["requests_per_second"] for r in counted) / len(counted), 1),
            "worker_cpu_ms_per_request": round(
                sum(r["worker_cpu_ms_per_request"] for r in counted) / len(counted), 3),
            "worker_rss_mb": {pid: max(v for v in values if v) for pid, values in rss[name].items()},
            "valid": all(r["non_2xx"] == 0 and r["socket_errors"] == 0 for r in rounds[name])}
    if profile:
        results["crm-meta"]["py_spy"] = profile
    return results


def profile_under_load(proc, url: str, headers: dict, args) -> dict:
    """py-spy on one crm-meta worker while wrk loads the server (bench/_pyspy.py)."""
    import _pyspy

    if not _pyspy.py_spy():
        raise SystemExit("py-spy is not installed: `.venv/bin/pip install py-spy` (measurement only)")
    worker = children(proc.pid)[0]
    header_flags = [flag for k, v in headers.items() for flag in ("-H", f"{k}: {v}")]
    load = subprocess.Popen(["wrk", f"-t{args.threads}", f"-c{args.connections}",
                             f"-d{args.profile + 2}s", *header_flags, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)  # wrk's connections are open
        summary = _pyspy.summarise(_pyspy.record(worker, args.profile))
    finally:
        load.wait()
    print(f"  py-spy, crm-meta worker {worker}: {summary['request_samples']} request-thread samples; "
          f"shares % {summary['share_percent']}", flush=True)
    return summary


def one_round(name: str, index: int, proc, url: str, headers: dict, args, rss: dict) -> list[dict]:
    """One counted round of `name`, with the rounds that had to be run again before it.

    wrk opens its connections at once and keeps them: now and then every one lands on the same
    gunicorn worker, and the round measures one process instead of two. Such a round is kept,
    flagged, left out of the mean and run again (at most twice).
    """
    attempts = []
    while len(attempts) < 3:
        workers = children(proc.pid)
        cpu_before = {pid: proc_cpu_seconds(pid) or 0.0 for pid in workers}
        load_before = load_average()
        result = run_wrk(url, headers, args.duration, args.threads, args.connections)
        used = {pid: (proc_cpu_seconds(pid) or 0.0) - cpu_before[pid] for pid in workers}
        total = sum(used.values()) or 1.0
        result["worker_cpu_share"] = [round(used[pid] / total, 2) for pid in workers]
        result["balanced"] = min(result["worker_cpu_share"]) >= MIN_SHARE
        result["worker_cpu_ms_per_request"] = round(total * 1000 / max(1, result["requests"]), 3)
        for pid in workers:
            rss.setdefault(str(pid), []).append(proc_rss_mb(pid))
        result["round"] = index
        result["load_average_before"] = load_before
        result["load_average"] = load_average()
        attempts.append(result)
        print(f"  {name:17} round {index}: {result['requests_per_second']:>7,.0f} req/s  "
              f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  workers' CPU "
              f"{result['worker_cpu_ms_per_request']} ms/req {result['worker_cpu_share']}  "
              f"load {load_before[0]} -> {result['load_average'][0]}"
              + ("" if result["balanced"] else "  ONE WORKER: run again")
              + (f"  NON-2XX {result['non_2xx']}" if result["non_2xx"] else "")
              + (f"  SOCKET ERRORS {result['socket_errors']}" if result["socket_errors"] else ""),
              flush=True)
        if result["balanced"]:
            break
    return attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load first")
    parser.add_argument("--only", default=",".join(ENDPOINTS), help="comma-separated subset of "
                        + ", ".join(ENDPOINTS))
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--businesses", type=int, default=20, help="discovered businesses")
    parser.add_argument("--accounts", type=int, default=50, help="ad accounts per business")
    parser.add_argument("--count-requests", type=int, default=50,
                        help="requests over which database round trips are averaged")
    parser.add_argument("--count-only", action="store_true", help="round trips only, no wrk")
    parser.add_argument("--invalidations", type=int, default=50,
                        help="changes timed from another process's commit to this one's cache")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL server to use "
                        "(a throwaway database is created there and dropped)")
    parser.add_argument("--output", type=Path, default=RESULTS / "api.json")
    parser.add_argument("--plain", action="store_true", help="serve every server with the same plain "
                        "gunicorn flags (2 workers x 4 gthreads), not the product's gunicorn.conf.py")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="then py-spy one crm-meta worker under load for SECONDS (needs py-spy)")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(only) - set(ENDPOINTS):
        parser.error(f"unknown endpoint(s) {', '.join(sorted(unknown))}")
    if not args.count_only and not shutil.which("wrk"):
        raise SystemExit(WRK_MISSING)
    info = machine()
    results: dict = {}
    round_trips: dict = {}
    invalidation: dict = {}
    with throwaway_database(args.database) as database_url:
        sandbox = SandboxProcess()
        logs = Path(tempfile.mkdtemp(prefix="api_bench_"))  # the servers' stderr, kept
        try:
            env = crm_env(database_url, sandbox.url)
            seeded = in_child(seed_crm, env, args.businesses, args.accounts)
            print(f"seeded: tenant {seeded['tenant_id']}, status {seeded['status']}, "
                  f"{seeded['business_managers']} businesses, {seeded['ad_accounts']} ad accounts, "
                  f"token-status answer {seeded['status_response_bytes']:,} bytes", flush=True)
            import peer_app

            peer_app.seed(database_url, seeded["tenant_id"], seeded["expires_at_epoch"], seeded["scopes"])
            peer_env = {"PEER_DATABASE_URL": database_url, "PEER_JWT_SECRET": env["JWT_SECRET_KEY"]}
            headers = {"Authorization": f"Bearer {seeded['jwt']}"}
            envs = {"crm-meta": env, "crm-meta-uncached": env | UNCACHED, "peer": peer_env,
                    "bare": {}}
            for name in (n for n in ENDPOINTS[:3] if n in only):
                round_trips[name] = in_child(count_round_trips, name, envs[name], database_url, PATH,
                                             headers, args.count_requests)
                print_round_trips(name, round_trips[name])
            if "crm-meta" in only:
                invalidation = in_child(invalidation_latency, env, seeded["tenant_id"],
                                        args.invalidations)
                print(f"status cache: a change committed by another process reached this one in "
                      f"{invalidation['p50_ms']} ms (p50), {invalidation['max_ms']} ms (max) over "
                      f"{invalidation['changes']} changes", flush=True)
            if not args.count_only:
                results = bench_all([n for n in ENDPOINTS if n in only], envs, headers, args, logs)
        finally:
            sandbox.close()
    summarise(results)
    write_results(args.output, {
        "machine": info | {"load_average_at_end": load_average()},
        "settings": {"gunicorn": f"{WORKERS} workers x {THREADS} gthreads "
                                 + ("(plain flags: " + " ".join(PLAIN_FLAGS) + ")" if args.plain
                                    else "(gunicorn.conf.py)"),
                     "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s --latency",
                     "rounds": args.rounds, "warmup_seconds": args.warmup, "path": PATH,
                     "discovery": {"businesses": args.businesses, "ad_accounts_per_business":
                                   args.accounts}},
        "endpoints": results, "db_round_trips_per_request": round_trips,
        "status_cache_invalidation": invalidation})


def print_round_trips(name: str, figures: dict) -> None:
    kinds = ", ".join(f"{k} {v:g}" for k, v in figures["wire_by_kind_per_request"].items())
    target = "  (target: <= 1)" if name.startswith("crm-meta") else ""
    print(f"{name}: {figures['wire_round_trips_per_request']:g} DATABASE ROUND TRIPS per "
          f"token-status request{target}\n"
          f"    on the wire: {kinds}\n"
          f"    SQLAlchemy statements + transaction ends: "
          f"{figures['statements_plus_transaction_ends_per_request']:g} "
          f"({figures['sqlalchemy_statements_per_request']:g} statements, "
          f"{figures['sqlalchemy_commits_per_request']:g} commits, "
          f"{figures['sqlalchemy_rollbacks_per_request']:g} rollbacks; "
          f"{figures['pool_checkouts_per_request']:g} pool checkouts)\n"
          f"    one request: {' | '.join(sql[:48] for sql in figures['one_request'])}", flush=True)


def summarise(results: dict) -> None:
    bare = results.get("bare", {}).get("mean_requests_per_second")
    bare_rounds = {r["round"]: r["requests_per_second"]
                   for r in results.get("bare", {}).get("rounds", []) if r["balanced"]}
    for name, result in results.items():
        result["ratio_to_bare"] = round(result["mean_requests_per_second"] / bare, 3) if bare else None
        # Each round against the bare endpoint's round right after it (the same minute's load).
        result["ratio_to_bare_per_round"] = [
            round(r["requests_per_second"] / bare_rounds[r["round"]], 3)
            for r in result["rounds"] if r["balanced"] and r["round"] in bare_rounds]
        rounds = ", ".join(f"{r['requests_per_second']:,.0f}" for r in result["rounds"] if r["balanced"])
        p99 = ", ".join(str(r["p99_ms"]) for r in result["rounds"] if r["balanced"])
        ratio = f"{result['ratio_to_bare']:.2f}x bare" if bare else "no bare run"
        print(f"{name:17} req/s {rounds} (mean {result['mean_requests_per_second']:,.0f}, {ratio}; "
              f"per round {result['ratio_to_bare_per_round']}); p99 ms {p99}; workers' CPU "
              f"{result['worker_cpu_ms_per_request']} ms/request; worker RSS MB "
              f"{json.dumps(list(result['worker_rss_mb'].values()))}"
              + ("" if result["valid"] else "  (ERRORS: see rounds)"))


if __name__ == "__main__":
    main()
