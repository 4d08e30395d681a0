"""CPU per signed Meta delivery inside one process, without gunicorn or HTTP: the WSGI app called
directly by a few threads (as gunicorn's gthreads would), so that a change to the webhook path
shows even on a busy machine (CPU time of the whole process: the request threads, the inbox
writer, the woken webhook pass and the log writer). Not the issue's figure (webhook_bench.py
is): a quick A/B.

    .venv/bin/python bench/webhook_inprocess.py [--deliveries 6000] [--threads 4] [--profile]

Set up as served (`webhook_bench.py`'s settings: APP_ENV=production, PostgreSQL in a throwaway
database, WEBHOOK_WAKE on, a tenant owning the WhatsApp account, the JSON log line through the
queue to /dev/null). Every delivery is the same one (Meta's retries: forwarded once), as wrk's.
`--profile` then cProfiles, one thread at a time, the request (WEBHOOK_WAKE's pass left to a
separate, profiled `run_pass` over as many stored deliveries).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import APP_ID, APP_SECRET, DEFAULT_DATABASE, throwaway_database  # noqa: E402


@contextmanager
def served(database_url: str, wake: bool = True):
    """The app as webhook_bench serves it; yields (app, one) where one() POSTs the delivery."""
    from api_bench import crm_env
    from webhook_bench import VERIFY_TOKEN, Receiver, delivery, seed, sign
    from werkzeug.test import EnvironBuilder

    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.infra.database import db
    from crm_meta.ops import logs, redaction

    receiver = Receiver()
    env = crm_env(database_url, "http://127.0.0.1:9") | {
        "META_VERIFY_TOKEN": VERIFY_TOKEN, "META_WEBHOOKS_ENABLED": "1", "API_BASE_URL": "",
        "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback", "META_APP_ID": APP_ID,
        "META_APP_SECRET": APP_SECRET, "LOG_FORMAT": "json", "WEBHOOK_WAKE": "1" if wake else "0"}
    receiver.secret = seed(env, receiver.url)["secret"]
    app = create_app(config_from_env(env))
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers[:] = [logs.queued(logs.handler("json", open("/dev/null", "w")))]  # noqa: SIM115
    logging.getLogger("crm_meta").setLevel("INFO")
    redaction.install()
    body = delivery("wamid.BENCH-INGEST")
    environ = EnvironBuilder(path="/webhooks/meta", method="POST", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}).get_environ()
    statuses: list[str] = []

    def one() -> None:
        request = dict(environ)
        request["wsgi.input"] = io.BytesIO(body)
        answer = app(request, lambda status, headers: status[:3] == "200" or statuses.append(status))
        b"".join(answer)
        answer.close()

    try:
        yield app, one
    finally:
        root.handlers[:] = saved
        receiver.server.shutdown()
        if statuses:
            print(f"NOT 200: {len(statuses)} answers, e.g. {statuses[0]}")
        with app.app_context():
            db.engine.dispose()


def run(one, count: int, threads: int) -> dict[str, float]:
    """`count` deliveries from `threads` threads; the request threads' CPU seconds."""
    left = iter(range(count))
    lock = threading.Lock()
    used: list[float] = []

    def loop() -> None:
        started = time.thread_time()
        while True:
            with lock:
                if next(left, None) is None:
                    break
            one()
        used.append(time.thread_time() - started)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(used)


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, summed by kind (the name without its number)."""
    from _common import CLK_TCK

    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = thread.name.rstrip("0123456789_").removesuffix("-").removesuffix(" (loop)")
        kind = "request" if kind.startswith("Thread") else kind
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return totals


def settle(app) -> None:
    """Wait for the woken passes to finish (their CPU belongs to the deliveries)."""
    from crm_meta.runtime import of

    of(app).webhooks.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-wake", action="store_true", help="WEBHOOK_WAKE off: the request alone")
    parser.add_argument("--passes", type=int, default=0, metavar="N",
                        help="then the pass alone: N passes over --per-pass deliveries each, CPU per pass")
    parser.add_argument("--per-pass", type=int, default=25)
    parser.add_argument("--profile", action="store_true", help="then cProfile the request and the pass")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    with throwaway_database(args.database, prefix="crm_meta_hook") as url, \
            served(url, wake=not args.no_wake) as (app, one):
        run(one, 500, args.threads)
        settle(app)
        for index in range(args.rounds):
            started, cpu, threads = time.perf_counter(), time.process_time(), thread_cpu()
            requests = run(one, args.deliveries, args.threads)
            settle(app)  # waiting costs no CPU; the passes' work does
            used = time.process_time() - cpu
            rate = args.deliveries / (time.perf_counter() - started)
            split = {kind: round((v - threads.get(kind, 0.0)) / args.deliveries * 1e6)
                     for kind, v in thread_cpu().items() if v - threads.get(kind, 0.0) > 0}
            split["request"] = round(requests / args.deliveries * 1e6)
            print(f"round {index}: CPU per delivery {used / args.deliveries * 1e6:.0f} us "
                  f"({rate:,.0f}/s wall); by thread (us): {split}", flush=True)
    if args.passes:
        passes(args)
    if args.profile:
        profile(args)


def passes(args) -> None:
    """The webhook pass alone (WEBHOOK_WAKE off): store --per-pass deliveries, then time the
    CPU of one pass over them (route, queue once, mark; the relay finds nothing due)."""
    from crm_meta.runtime import of

    with throwaway_database(args.database, prefix="crm_meta_hook") as url, \
            served(url, wake=False) as (app, one):
        worker, used = of(app).webhooks, 0.0
        for index in range(args.passes + 20):
            run(one, args.per_pass, args.threads)
            started = time.process_time()
            worker.run_pass()
            if index >= 20:  # warm
                used += time.process_time() - started
        print(f"pass over {args.per_pass} deliveries: {used / args.passes * 1e3:.2f} ms CPU "
              f"({used / args.passes / args.per_pass * 1e6:.0f} us per delivery)")


def profile(args) -> None:
    """cProfile, by CPU time of each thread (time.thread_time), every thread that works for the
    deliveries: the request threads, the inbox writer, the woken pass; one table per kind."""
    from crm_meta.meta.webhooks import inbox, worker

    profiles: dict[str, list[cProfile.Profile]] = {}

    def profiled(kind: str, target):
        mine = threading.local()

        def call(*a, **k):
            profile = getattr(mine, "profile", None)
            if profile is None:
                profile = mine.profile = cProfile.Profile(time.thread_time)
                profiles.setdefault(kind, []).append(profile)
            profile.enable()
            try:
                return target(*a, **k)
            finally:
                profile.disable()
        return call

    inbox.Writer._run = profiled("inbox writer", inbox.Writer._run)
    worker.WebhookWorker._run = profiled("webhook pass", worker.WebhookWorker._run)
    with throwaway_database(args.database, prefix="crm_meta_hook") as url, \
            served(url, wake=not args.no_wake) as (app, one):
        one = profiled("request", one)
        run(one, args.deliveries, args.threads)  # the background threads' first calls included
        settle(app)
        time.sleep(0.2)
        for kind, found in profiles.items():
            stats = pstats.Stats(*found)
            print(f"== {kind}: {stats.total_tt / args.deliveries * 1e6:.0f} us CPU per delivery (profiled)")
            stats.sort_stats("cumulative").print_stats(40 if kind == "request" else 30)
            if kind == "request":
                stats.print_callees("_receive")


if __name__ == "__main__":
    main()
