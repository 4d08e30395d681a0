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
import json
import time
from pathlib import Path

from _common import (
    DEFAULT_DATABASE,
    RESULTS,
    SandboxProcess,
    in_child,
    machine,
    throwaway_database,
    write_results,
)
from _sweeps import baseline, measure_sweep, seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", default="8", help="comma-separated, e.g. 8,32")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations "
                        "(slower; gives the sweep's own peak)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-calls floor")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep.json")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    info = machine()

    runs = []
    with throwaway_database(args.database) as database_url:
        sandbox = SandboxProcess()
        try:
            # Measure the sweep, not Meta's hourly budget (at 100 % the client rightly stops).
            sandbox.post("config", app_call_budget=10**9, call_log_limit=10**6)
            started = time.perf_counter()
            in_child(seed, database_url, sandbox.url, args.connections)
            print(f"seeded {args.connections} connections in {time.perf_counter() - started:.1f}s",
                  flush=True)
            if not args.no_baseline:  # in a child process: its memory is not the sweep's
                floor = in_child(baseline, database_url, sandbox.url, concurrencies[0], args.latency_ms)
                print(json.dumps(floor), flush=True)
                runs.append(floor)
            for index, concurrency in enumerate(concurrencies):
                # In this process, as before: the first run is the scheduler's path.
                result = measure_sweep(database_url, sandbox.url, concurrency, args.latency_ms,
                                       scheduled=index == 0, use_tracemalloc=args.tracemalloc)
                print(json.dumps(result), flush=True)
                runs.append(result)
        finally:
            sandbox.close()
    write_results(args.output, {"machine": info, "runs": runs})


if __name__ == "__main__":
    main()
