"""CPU of one warm drop-in gateway call inside one process, split by stage: the WSGI app called
directly (no gunicorn, no HTTP on our side), single-threaded, so that a change to the gateway's
own work shows even on a busy machine (CPU time, not wall time). A quick A/B, not the target's
figure (proxy_bench.py is).

    .venv/bin/python bench/gateway_inprocess.py [--requests 2000] [--rounds 3] [--profile]

Set up as proxy_bench.py serves it: PostgreSQL (a throwaway database), the status cache on
(its listener connected), the governor in Redis, `META_MODE=live` pointed at the sandbox in a
process of its own (its CPU is not ours), rate limits off, the log level WARNING through the
queue to /dev/null. The call: `GET /graph/v25.0/act_.../campaigns?fields=...&access_token=cmg_...`.

Each round times, in this order: `/healthz` (the floor of any request: the app's pipeline), the
gateway call bare (the total), then the gateway call with each stage wrapped in a CPU timer
(`time.thread_time`; the wrappers' own cost, ~1 us each, lands in the stages). "rest" is the
total less the stages: Flask, the app's hooks, the view's glue, the response.

A/B: run it alternately from two checkouts (`git worktree` or `git archive REF | tar -x`), e.g.
    for i in 1 2 3; do (cd ../before && python bench/gateway_inprocess.py --rounds 1); \
                       python bench/gateway_inprocess.py --rounds 1; done
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import logging
import os
import pstats
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import DEFAULT_DATABASE, SandboxProcess, throwaway_database  # noqa: E402
from proxy_bench import PARAMS, PATH, seed, settings  # noqa: E402

REDIS = "redis://127.0.0.1:6379/15"


class Stages:
    """CPU per stage, accumulated by wrappers put on the gateway's collaborators."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.depth = 0

    def timed(self, name: str, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.spent[name] += time.thread_time() - started

        return wrapper


@contextmanager
def staged(app, stages: Stages) -> Iterator[None]:
    """The gateway's stages wrapped in CPU timers (and unwrapped afterwards)."""
    from crm_meta.auth import gateway_tokens
    from crm_meta.gateway import limits, views
    from crm_meta.meta import exposure, graph, passthrough, proxy, scrub
    from crm_meta.meta.governor import Governor
    from crm_meta.meta.store import TokenStore
    from crm_meta.runtime import runtime

    with app.app_context():
        client = runtime().graph
    # (label, owner, attribute): module functions are looked up on their module at call time.
    targets = [
        ("credential (read from the request)", views, "credential"),
        ("token lookup (open_with)", gateway_tokens, "open_with"),
        ("version check", views, "version_refusal"),
        ("gateway limit (off)", limits, "spend"),
        ("known ids (Known.of)", exposure.Known, "of"),
        ("allow-list check", proxy, "check"),
        ("usable + governor scopes", proxy, "usable"),
        ("usable + governor scopes", proxy, "scopes"),
        ("token and proof, kept (Gateway.token_of)", proxy.Gateway, "token_of"),
        ("decrypt (TokenStore.read)", TokenStore, "read"),
        ("governor check (Redis MGET)", Governor, "check"),
        ("appsecret_proof", graph.GraphClient, "proof"),
        ("outbound: urllib3 exchange", client.pool, "urlopen"),
        ("outbound: answered (metrics, observe)", graph.GraphClient, "answered"),
        ("scrub body", scrub, "body"),
        ("scrub headers", scrub, "headers"),
        ("relink paging", proxy, "relinked"),
    ]
    # Gateway.forward and passthrough.forward in full, for what lies between the stages.
    outer = [("Gateway.forward (all of it)", proxy.Gateway, "forward"),
             ("passthrough.forward (all of it)", passthrough, "forward")]
    with ExitStack() as stack:
        for label, owner, attribute in targets + outer:
            if not hasattr(owner, attribute):
                continue  # a stage another checkout does not have (an A/B)
            own = vars(owner)
            original, had = own.get(attribute), attribute in own
            if isinstance(original, classmethod):
                replacement: object = staticmethod(stages.timed(label, original.__get__(None, owner)))
            else:
                replacement = stages.timed(label, getattr(owner, attribute))
            setattr(owner, attribute, replacement)
            if had:
                stack.callback(setattr, owner, attribute, original)
            else:  # an instance's method (the pool's): its class's comes back
                stack.callback(delattr, owner, attribute)
        yield


Call = Callable[[], None]


@contextmanager
def gateway_app(database_url: str, log_level: str) -> Iterator[tuple[Call, Call, object]]:
    """(one gateway call, one /healthz, the app), served as proxy_bench serves it."""
    from werkzeug.test import EnvironBuilder

    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.infra import statuscache
    from crm_meta.infra.database import db
    from crm_meta.ops import logs, redaction

    sandbox = SandboxProcess()
    try:
        big = 10**9
        sandbox.post("config", app_call_budget=big, business_call_budget=big, ad_account_call_budget=big)
        env = {**settings(database_url, sandbox.url, REDIS, f"bench-governor:{uuid.uuid4().hex[:8]}"),
               "LOG_LEVEL": log_level}
        _key, token, _meta_token = seed(env, sandbox.url)
        app = create_app(config_from_env(env))
        app.debug = bool(os.environ.get("BENCH_LOG"))  # tracebacks in the log when it is kept
        root = logging.getLogger()
        saved = list(root.handlers)
        sink = open(os.environ.get("BENCH_LOG", "/dev/null"), "w")  # noqa: SIM115  (BENCH_LOG: keep it)
        root.handlers[:] = [logs.queued(logs.handler("text", sink))]
        logging.getLogger("crm_meta").setLevel(log_level)
        redaction.install()
        with app.app_context():
            cache = statuscache.for_engine(db.engine, app.config["STATUS_CACHE_SECONDS"])
        deadline = time.monotonic() + 30
        while cache is not None and cache.generation() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the listener in place, as in a served worker: the lookup is kept
        gateway = EnvironBuilder(path=f"/graph/v25.0/{PATH}",
                                 query_string={**PARAMS, "access_token": token}).get_environ()
        healthz = EnvironBuilder(path="/healthz").get_environ()

        def call(environ) -> Call:
            def one() -> None:
                seen = []
                body = app(dict(environ), lambda status, headers: seen.append(status))
                data = b"".join(body)
                body.close()
                if not seen[0].startswith("200"):
                    raise SystemExit(f"unexpected {seen[0]}: {data[:300]!r}")

            return one

        try:
            yield call(gateway), call(healthz), app
        finally:
            root.handlers[:] = saved
            with app.app_context():
                db.engine.dispose()
    finally:
        sandbox.close()


def per_call(one: Callable[[], None], count: int) -> float:
    """CPU (this process, all threads) per call, in microseconds."""
    started = time.process_time()
    for _ in range(count):
        one()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed calls per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="", help="then cProfile as many calls, sorted so (tottime...)")
    parser.add_argument("--log-level", default="WARNING", help="crm_meta's log level (proxy_bench: WARNING)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    with throwaway_database(args.database, prefix="crm_meta_gw_inproc") as url, \
            gateway_app(url, args.log_level) as (gateway, healthz, app):
        for _ in range(300):
            gateway()
            healthz()
        totals: dict[str, list[float]] = defaultdict(list)
        stages = Stages()
        for _ in range(args.rounds):
            totals["healthz"].append(per_call(healthz, args.requests))
            totals["gateway"].append(per_call(gateway, args.requests))
            with staged(app, stages):
                totals["gateway, staged"].append(per_call(gateway, args.requests))
        calls = args.requests * args.rounds
        for mode, figures in totals.items():
            print(f"{mode:<40} {' '.join(f'{f:7.0f}' for f in figures)} us CPU per call "
                  f"(min {min(figures):.0f})")
        inner = {name: spent / calls * 1e6 for name, spent in stages.spent.items()}
        staged_total = min(totals["gateway, staged"])
        print(f"\nstages (us CPU per call, {calls} calls; of {staged_total:.0f} staged):")
        for name, spent in inner.items():
            if "all of it" not in name:
                print(f"  {name:<42} {spent:7.1f}")
        outside = staged_total - inner["Gateway.forward (all of it)"] - sum(
            spent for name, spent in inner.items() if name.startswith(
                ("credential", "token lookup", "version", "gateway limit")))
        between = inner["Gateway.forward (all of it)"] - sum(
            spent for name, spent in inner.items() if "all of it" not in name and not name.startswith(
                ("credential", "token lookup", "version", "gateway limit")))
        print(f"  {'Gateway.forward, between the stages':<42} {between:7.1f}  (commit, log, metrics, glue)")
        print(f"  {'rest: Flask, hooks, view, response':<42} {outside:7.1f}  "
              f"(/healthz alone: {min(totals['healthz']):.0f})")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [gateway() for _ in range(args.requests)])
            pstats.Stats(profile).sort_stats(args.profile).print_stats(60)


if __name__ == "__main__":
    main()
