"""Run one keep-alive sweep in a process of its own: `python -m tests.meta.keepalive.sweeper SETTINGS
MODE READY GO` builds the app from SETTINGS (JSON), touches READY, waits for GO to exist, sweeps
(MODE `lock`: with the cluster lock, `claims`: claims alone) and prints the counts as JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    settings, mode, ready, go = json.loads(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    from config import TestingConfig
    from crm_meta.app import create_app
    from crm_meta.meta.keepalive import sweep as sweeping
    from crm_meta.runtime import of

    app = create_app(TestingConfig(**settings))
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    report = sweeping.run_sweep(app, of(app), sweeping.Scope(cluster_lock=mode == "lock"))
    print(json.dumps({"pid": os.getpid(), "counts": report.counts(),
                      "skipped_reason": report.skipped_reason}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
