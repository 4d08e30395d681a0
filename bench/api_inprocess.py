"""CPU per token-status read inside one process, without gunicorn or HTTP: the WSGI app called
directly, single-threaded, so that a change to the request's own path shows even on a busy
machine (CPU time, not wall time). Not the contract's figure (api_bench.py is): a quick A/B.

    .venv/bin/python bench/api_inprocess.py [--requests 3000] [--profile] [--database URL]

Set up as served: PostgreSQL (a throwaway database) with the status cache on, the rate
limiter on, the log line through the queue to a text handler writing to /dev/null.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import DEFAULT_DATABASE, throwaway_database  # noqa: E402


@contextmanager
def status_read(database_url: str):
    from werkzeug.test import EnvironBuilder

    from crm_meta.app import create_app
    from crm_meta.cli import create_tenant
    from crm_meta.infra.database import db
    from crm_meta.ops import logs, redaction
    from tests.helpers.settings import testing_config
    from tests.helpers.users import bearer

    app = create_app(testing_config("http://127.0.0.1:9", database_url, TESTING=False, META_MODE="live",
                                    RATELIMIT_ENABLED=True, STATUS_CACHE_SECONDS=60))
    with app.app_context():
        db.create_all()
        tenant_id = create_tenant("Bench", "bench").id
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers[:] = [logs.queued(logs.handler("text", open("/dev/null", "w")))]  # noqa: SIM115
    logging.getLogger("crm_meta").setLevel("INFO")
    redaction.install()
    environ = EnvironBuilder(path="/crm/marketing/token-status", headers=bearer(tenant_id)).get_environ()

    def one() -> None:
        body = app(dict(environ), lambda status, headers: None)
        b"".join(body)
        body.close()

    try:
        yield one
    finally:
        root.handlers[:] = saved
        with app.app_context():
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="then cProfile as many (cumulative)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    with throwaway_database(args.database, prefix="crm_meta_inproc") as url, status_read(url) as one:
        for _ in range(300):
            one()
        started = time.process_time()
        for _ in range(args.requests):
            one()
        print(f"CPU per token-status read: {(time.process_time() - started) / args.requests * 1e6:.0f} us")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(lambda: [one() for _ in range(args.requests)])
            pstats.Stats(profile).sort_stats("cumulative").print_stats(50)


if __name__ == "__main__":
    main()
