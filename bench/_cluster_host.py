"""One stand-in host for sweep_cluster_bench.py:

    python bench/_cluster_host.py SETTINGS READY GO EVENTS

builds the app from SETTINGS (JSON), touches READY, waits for GO to exist, then runs the
keep-alive sweep as its scheduler does until it is killed: driver `scheduler` starts the app's
own APScheduler jobs (crm_meta.jobs.start), driver `loop` calls the same tick in a loop. Every
tick's report (the jobs module's log records) is appended to EVENTS as one JSON line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import timedelta
from pathlib import Path


class JsonLines(logging.Handler):
    """The jobs module's records, one JSON object a line, flushed as they come."""

    def __init__(self, path: Path):
        super().__init__(logging.DEBUG)
        self.stream = path.open("a", buffering=1)

    def emit(self, record: logging.LogRecord) -> None:
        counts = record.args if isinstance(record.args, dict) else None
        self.stream.write(json.dumps({"pid": os.getpid(), "t": record.created, "level": record.levelname,
                                      "message": record.getMessage()[:300], "counts": counts}) + "\n")


def main(argv: list[str]) -> int:
    settings, ready, go, events = json.loads(argv[0]), Path(argv[1]), Path(argv[2]), Path(argv[3])
    from _sweeps import bench_config

    from crm_meta import jobs
    from crm_meta.app import create_app

    app = create_app(bench_config(
        settings["database_url"], settings["sandbox_url"], settings["concurrency"],
        KEEPALIVE_TICK_MINUTES=settings["tick"] / 60, KEEPALIVE_CLAIM_SECONDS=settings["lease"],
        KEEPALIVE_INTERVAL_HOURS=settings["interval_hours"], SCHEDULER_ENABLED=False))
    log = logging.getLogger(jobs.__name__)
    log.addHandler(JsonLines(events))
    log.setLevel(logging.DEBUG)  # "skipped: another process holds the lock" is a debug line
    log.propagate = False
    ready.touch()
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.01)
    if settings["driver"] == "scheduler":
        # Bench only: the product waits 30 s after boot before its first tick.
        jobs.FIRST_RUN_DELAY = timedelta(seconds=settings["first_run_delay"])
        jobs.start(app)
        while True:
            time.sleep(3600)
    while True:  # what the scheduler's interval job does, without APScheduler
        jobs.keepalive_tick(app)
        time.sleep(settings["tick"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
