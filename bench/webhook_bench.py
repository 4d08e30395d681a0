"""Meta's webhooks under load: crm-meta served by gunicorn on PostgreSQL, as deployed.

1. ingest: wrk POSTs a signed WhatsApp delivery as fast as the server takes it (every one
   verified, stored in the inbox and acknowledged); figures: deliveries/s, ack latency p50/p99.
2. receipt-to-CRM: this process sends unique signed deliveries (one WhatsApp message each) at
   --rate per second; a receiver here verifies them with the `standardwebhooks` library and
   notes when each arrived; figures: p50/p95/p99 from the POST to Meta's callback to the CRM.
3. both at once: phase 2 while wrk keeps the ingest going.
Then: every unique message reached the CRM exactly once; the inbox drained.

    .venv/bin/python bench/webhook_bench.py [--duration 20] [--rate 100] [--connections 16]

Needs wrk (`apt-get install -y wrk`) and the tests' PostgreSQL (BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    APP_ID,
    APP_SECRET,
    CLK_TCK,
    DEFAULT_DATABASE,
    RESULTS,
    ROOT,
    children,
    free_port,
    in_child,
    load_average,
    machine,
    proc_cpu_seconds,
    stop,
    throwaway_database,
    write_results,
)
from bench.api_bench import KEEP_ENV, MIN_SHARE, crm_env, parse_wrk

WABA_ID, PHONE_ID = "1150000000000001", "1160000000000001"
VERIFY_TOKEN = "bench-verify-token-0123456789-abcdef"


def delivery(message_id: str, text: str = "hola") -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "34600000001",
                                                            "phone_number_id": PHONE_ID},
             "contacts": [{"profile": {"name": "Cliente"}, "wa_id": "34611000111"}],
             "messages": [{"from": "34611000111", "id": message_id, "timestamp": str(int(time.time())),
                           "type": "text", "text": {"body": text}}]}
    entry = {"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def seed(env: dict, receiver_url: str) -> dict:
    """Child process: migrate, a tenant whose connection owns the WhatsApp account, its endpoint."""
    from flask_migrate import upgrade

    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.cli import create_tenant
    from crm_meta.infra.database import db
    from crm_meta.meta.webhooks import forward
    from crm_meta.models import MetaConnection
    from crm_meta.runtime import of

    app = create_app(config_from_env(env))
    with app.app_context():
        upgrade()
        tenant = create_tenant("Bench Webhooks", "bench-webhooks")
        row = MetaConnection(tenant_id=tenant.id, status="connected", scopes=[], warnings_sent={},
                             business_managers=[{"id": "2010000000000001", "name": "B", "ad_accounts": [],
                                                 "whatsapp_business_accounts": [{"id": WABA_ID}]}])
        of(app).store.write(row, "EAAbench-token-not-used-by-messages")
        db.session.add(row)
        secret = forward.new_secret()
        forward.set_endpoint(of(app).cipher, tenant.id, receiver_url, secret)
        db.session.commit()
        return {"tenant_id": tenant.id, "secret": secret}


def inbox_pending(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL")).scalar()
    engine.dispose()
    return count


class Receiver:
    """The CRM: verifies with the library (every 10th, to spare the CPU), notes arrival times."""

    def __init__(self):
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self.bad_signatures = 0
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                event = json.loads(body)
                message_id = event["data"]["message"]["id"]
                if len(receiver.arrived) % 10 == 0:
                    from standardwebhooks import Webhook, WebhookVerificationError

                    try:
                        Webhook(receiver.secret).verify(body, dict(self.headers))
                    except WebhookVerificationError:
                        receiver.bad_signatures += 1
                if message_id in receiver.arrived:
                    receiver.duplicates += 1
                receiver.arrived.setdefault(message_id, now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/crm/meta-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def serve(env: dict, port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k in KEEP_ENV or k.startswith("LC_")}
    # As the image ships it: LOG_FORMAT=json, so gunicorn's access log is off and the app writes
    # one JSON line per request (to stderr, here the log file).
    environ |= {"LOG_FORMAT": "json"} | env | {
        "HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads), "GUNICORN_LOG_LEVEL": "warning"}
    with log.open("ab") as errors:
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                                 "--name", "bench-webhooks", "wsgi:app"],
                                cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=errors)


def wrk(url: str, duration: int, connections: int, script: Path) -> dict:
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                           url], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr[:500]}")
    return parse_wrk(done.stdout)


def wrk_script(directory: Path) -> Path:
    body = delivery("wamid.BENCH-INGEST")  # the same delivery: Meta's retries, forwarded once
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Hub-Signature-256"] = "{sign(body)}"\n')
    return script


def ingest(server_pid: int, url: str, args, script: Path) -> dict:
    """One wrk round of the ingest, with each worker's share of the workers' CPU: wrk opens its
    connections at once and keeps them, and now and then every one lands on the same gunicorn
    worker, which then does all the work alone. Such a round is kept (`attempts`), said so and
    run again, at most twice; the last round is the figure."""
    attempts = []
    while len(attempts) < 3:
        workers = children(server_pid)
        before, load_before = {pid: proc_cpu_seconds(pid) or 0.0 for pid in workers}, load_average()
        result = wrk(url, args.duration, args.connections, script)
        used = {pid: (proc_cpu_seconds(pid) or 0.0) - before[pid] for pid in workers}
        total = sum(used.values()) or 1.0
        result |= {"worker_cpu_share": [round(used[pid] / total, 2) for pid in workers],
                   "worker_cpu_ms_per_delivery": round(total * 1000 / max(1, result["requests"]), 3),
                   "load_average_before": load_before, "load_average_after": load_average()}
        result["balanced"] = min(result["worker_cpu_share"]) >= MIN_SHARE
        attempts.append(result)
        print(f"ingest: {result['requests_per_second']:,.0f} deliveries/s, p50 {result['p50_ms']} ms, "
              f"p99 {result['p99_ms']} ms; workers' CPU {result['worker_cpu_ms_per_delivery']} ms per "
              f"delivery, shares {result['worker_cpu_share']}; load {load_before} -> "
              f"{result['load_average_after']}"
              + ("" if result["balanced"] else "  ONE WORKER took (almost) all of it: run again"), flush=True)
        if result["balanced"]:
            break
    return {**attempts[-1], "attempts": attempts[:-1]}


def profile(server_pid: int, url: str, seconds: int, connections: int, script: Path) -> dict:
    """CPU samples (idle threads left out) of every worker, all its threads, while wrk ingests:
    the request threads, the inbox writer and the webhook pass."""
    from concurrent.futures import ThreadPoolExecutor

    import _pyspy

    spy = bool(_pyspy.py_spy()) and not os.environ.get("BENCH_NO_PYSPY")
    if not spy:
        print("py-spy is not installed (`pip install py-spy`, measurement only): CPU split only")
    workers = children(server_pid)
    box: dict = {}
    load = threading.Thread(target=lambda: box.update(wrk(url, seconds + 2, connections, script)))
    load.start()
    try:
        time.sleep(1)
        before = cpu_by_process(workers)
        if os.environ.get("BENCH_PERF"):  # native split (kernel, interpreter, libraries): perf
            subprocess.run(["perf", "record", "-q", "-g", "-o", os.environ["BENCH_PERF"], "-p",
                            ",".join(map(str, workers)), "--", "sleep", str(seconds)], check=True)
            raws = []
        elif spy:
            with ThreadPoolExecutor(len(workers)) as pool:
                raws = list(pool.map(lambda pid: _pyspy.record(pid, seconds, idle=False), workers))
        else:
            raws = []
            time.sleep(seconds)
        after = cpu_by_process(workers)
    finally:
        load.join()
    summaries = {pid: _pyspy.summarise_cpu(raw) for pid, raw in zip(workers, raws, strict=False)}
    for pid, summary in summaries.items():
        print(pid, json.dumps(summary, indent=1))
    used = {name: round(after[name] - before.get(name, 0.0), 2) for name in after}
    rate = box.get("requests_per_second") or 0
    print("CPU seconds in", seconds, "s:", used, "wrk:", box)
    mine = [used[f"worker {pid}"] for pid in workers]
    shares = [round(v / (sum(mine) or 1.0), 2) for v in mine]
    if min(shares) < MIN_SHARE:
        print(f"ONE WORKER took (almost) all of it (shares {shares}): profile again")
    return {"workers": summaries, "cpu_seconds": used, "seconds": seconds, "wrk": box,
            "worker_cpu_share": shares,
            "cpu_ms_per_request": {name: round(1000 * v / (rate * seconds), 3) if rate else None
                                   for name, v in used.items()}}


def cpu_by_process(workers: list[int]) -> dict[str, float]:
    """CPU seconds used so far: each gunicorn worker, PostgreSQL's processes, wrk, everything."""
    totals = {f"worker {pid}": proc_cpu_seconds(pid) or 0.0 for pid in workers}
    for kind in ("postgres", "wrk"):
        totals[kind] = 0.0
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = stat.read_text().strip()
        except OSError:
            continue
        if name in ("postgres", "wrk"):
            totals[name] += proc_cpu_seconds(int(stat.parent.name)) or 0.0
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    totals["machine_busy"] = (sum(map(int, fields)) - int(fields[3]) - int(fields[4])) / CLK_TCK
    return totals


def paced(url: str, rate: float, duration: float, prefix: str) -> tuple[dict[str, float], list[float], int]:
    """Unique deliveries at `rate` per second: id -> send time; ack latencies; failures."""
    sent, acks, failures = {}, [], 0
    session = requests.Session()
    started = time.perf_counter()
    n = 0
    while (elapsed := time.perf_counter() - started) < duration:
        due = started + n / rate
        if due > time.perf_counter():
            time.sleep(due - time.perf_counter())
        message_id = f"wamid.{prefix}{n:07d}"
        body = delivery(message_id, text=f"mensaje {n}")
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
        sent[message_id] = time.time()
        began = time.perf_counter()
        answer = session.post(url, data=body, headers=headers, timeout=10)
        acks.append((time.perf_counter() - began) * 1000)
        failures += answer.status_code != 200
        n += 1
    del elapsed
    return sent, acks, failures


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1) if values else 0.0


def latency(sent: dict[str, float], receiver: Receiver, wait: float) -> dict:
    deadline = time.time() + wait
    while time.time() < deadline and any(m not in receiver.arrived for m in sent):
        time.sleep(0.1)
    delays = [(receiver.arrived[m] - t) * 1000 for m, t in sent.items() if m in receiver.arrived]
    return {"sent": len(sent), "reached_crm": len(delays), "p50_ms": percentile(delays, 50),
            "p95_ms": percentile(delays, 95), "p99_ms": percentile(delays, 99),
            "max_ms": round(max(delays), 1) if delays else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0, help="unique deliveries/s of phase 2 and 3")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the served app (experiments), repeatable")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="only profile: py-spy on one worker while wrk ingests (bench/_pyspy.py)")
    args = parser.parse_args()
    receiver = Receiver()
    results: dict = {"machine": machine(), "settings": vars(args)}
    with throwaway_database(args.database) as database, tempfile.TemporaryDirectory() as tmp:
        env = crm_env(database, "http://127.0.0.1:9")  # no Graph call for messages
        env |= {"META_VERIFY_TOKEN": VERIFY_TOKEN, "META_WEBHOOKS_ENABLED": "1", "API_BASE_URL": "",
                "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback",
                "META_APP_ID": APP_ID, "META_APP_SECRET": APP_SECRET}
        env |= dict(item.split("=", 1) for item in args.env)
        seeded = in_child(seed, env, receiver.url)
        receiver.secret = seeded["secret"]
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        server = serve(env, port, args.workers, args.threads, log)
        url = f"http://127.0.0.1:{port}/webhooks/meta"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(url, timeout=10, params={"hub.mode": "subscribe", "hub.challenge": "1",
                                                            "hub.verify_token": VERIFY_TOKEN}).ok \
                            and len(children(server.pid)) >= args.workers:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"gunicorn did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            script = wrk_script(Path(tmp))
            wrk(url, 3, args.connections, script)  # warm-up, not recorded
            print(f"load average before: {load_average()}", flush=True)
            if args.profile:
                results["py_spy"] = profile(server.pid, url, args.profile, args.connections, script)
                results["load_at_end"] = load_average()
                print(f"load average after: {results['load_at_end']}")
                write_results(RESULTS / "webhooks_profile.json", results)
                return
            results["load_before_ingest"] = load_average()
            results["ingest"] = ingest(server.pid, url, args, script)
            sent, acks, failures = paced(url, args.rate, args.duration, "ALONE")
            results["receipt_to_crm"] = {**latency(sent, receiver, 60), "ack_p50_ms": percentile(acks, 50),
                                         "ack_p99_ms": percentile(acks, 99), "failures": failures,
                                         "rate": args.rate}
            print("receipt to CRM:", results["receipt_to_crm"])
            box: dict = {}
            workers = children(server.pid)
            before = [proc_cpu_seconds(pid) or 0.0 for pid in workers]
            loader = threading.Thread(target=lambda: box.update(wrk(url, args.duration, args.connections,
                                                                    script)))
            loader.start()
            sent, acks, failures = paced(url, args.rate, args.duration - 1, "LOADED")
            loader.join()
            used = [(proc_cpu_seconds(pid) or 0.0) - cpu for pid, cpu in zip(workers, before, strict=True)]
            box["worker_cpu_share"] = [round(v / (sum(used) or 1.0), 2) for v in used]
            results["under_ingest"] = {"ingest": box, **latency(sent, receiver, 120),
                                       "ack_p50_ms": percentile(acks, 50), "ack_p99_ms": percentile(acks, 99),
                                       "failures": failures}
            print("both at once:", results["under_ingest"])
            time.sleep(2)
            results["inbox_pending_at_end"] = inbox_pending(database)
            results["crm_duplicates"] = receiver.duplicates
            results["crm_bad_signatures"] = receiver.bad_signatures
            results["load_at_end"] = load_average()
            print(f"load average after: {results['load_at_end']}; inbox waiting "
                  f"{results['inbox_pending_at_end']}, duplicates at the CRM {receiver.duplicates}, "
                  f"bad signatures {receiver.bad_signatures}")
            results["median_ack_ms"] = statistics.median(acks) if acks else None
        finally:
            stop(server)
    write_results(RESULTS / "webhooks.json", results)


if __name__ == "__main__":
    main()
