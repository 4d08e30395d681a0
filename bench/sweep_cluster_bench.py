"""Keep-alive sweep across hosts: three processes with schedulers against one PostgreSQL
database and one sandbox. Proves "each due connection checked once per interval" and "a sweeper
killed -9 mid-sweep is finished by another within one tick plus the claim lease", then measures
how one sweep scales with KEEPALIVE_CONCURRENCY and what one host can sweep in an interval.

    .venv/bin/python bench/sweep_cluster_bench.py [--connections 1000] [--latency-ms 100]
        [--hosts 3] [--tick 2] [--lease 10] [--concurrency 8] [--scale 8,16,32]

Figures go to bench/results/sweep_cluster.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _cluster import HostCluster, Monitor, per_process
from _common import (
    DEFAULT_DATABASE,
    RESULTS,
    SandboxProcess,
    in_child,
    kill9,
    load_average,
    machine,
    proc_cpu_seconds,
    throwaway_database,
    wait_until,
    write_results,
)
from _pgwire import WireCounter
from _sweeps import measure_sweep, seed


def clock_offset(sandbox: SandboxProcess) -> timedelta:
    """The domain's "now" is real time plus the sandbox clock's offset."""
    return timedelta(seconds=float(sandbox.get("clock")["offset_seconds"]))


def call_counts(sandbox: SandboxProcess, seeded: list[tuple[int, str]]) -> dict[int, int]:
    """debug_token calls per connection (row id) since the call log was last cleared."""
    calls = sandbox.debug_calls()
    return {row_id: calls.get(token_id, 0) for row_id, token_id in seeded}


def histogram(counts: dict[int, int]) -> dict[str, int]:
    """How many connections were asked 0, 1, 2... times."""
    out: dict[str, int] = {}
    for value in counts.values():
        out[str(value)] = out.get(str(value), 0) + 1
    return dict(sorted(out.items(), key=lambda item: int(item[0])))


def interval(args, sandbox, cluster: HostCluster, monitor: Monitor, seeded, *, kill: bool) -> dict:
    """One interval's sweep by the cluster, optionally killing the sweeper part-way through."""
    total = len(seeded)
    offset = clock_offset(sandbox)
    since = datetime.now(UTC) + offset - timedelta(seconds=0.5)
    started_wall, started = time.time(), time.monotonic()
    result: dict = {"connections": total, "killed": None}
    if kill:
        def mid_sweep():
            checked, claims = monitor.progress(since), monitor.claims()
            if checked >= total:
                raise SystemExit("the sweep ended before the kill: raise --connections or --latency-ms")
            return checked >= args.kill_at * total and claims and (checked, claims)

        checked_at_kill, claims = wait_until(mid_sweep, "the sweep to get part-way", 600, every=0.02)
        victims = {owner for owner in claims.values()} & set(cluster.pids)
        if len(victims) != 1:
            raise SystemExit(f"expected one sweeping host, claims say {sorted(victims)}")
        victim = victims.pop()
        kill9(victim)
        killed_at, killed_domain = time.monotonic(), datetime.now(UTC) + offset
        cluster.reap(victim)
        result["killed"] = {"pid": victim, "after_seconds": round(killed_at - started, 2),
                            "checked_at_kill": checked_at_kill, "claimed_at_kill": len(claims)}
    wait_until(lambda: monitor.progress(since) >= total and not monitor.claims(),
               "every connection to be checked", 600 + 20 * args.lease, every=0.05)
    done = time.monotonic()
    result["seconds"] = round(done - started, 2)
    time.sleep(args.settle_ticks * args.tick)  # any late second check would show up here
    counts = call_counts(sandbox, seeded)
    result["debug_token_calls_per_connection"] = histogram(counts)
    result["exactly_once"] = all(value == 1 for value in counts.values())
    result["by_process"] = per_process(cluster.events, started_wall, time.time())
    if kill:
        killed = result["killed"]
        twice = {row_id for row_id, value in counts.items() if value > 1}
        killed["recovery_seconds"] = round(done - killed_at, 2)
        # A check records the time it started: the first one after the kill is a survivor's.
        first = monitor.first_check_after(killed_domain)
        killed["takeover_seconds"] = round((first - killed_domain).total_seconds(), 2) if first else None
        remaining = total - killed["checked_at_kill"]
        ideal_rest = remaining * args.latency_ms / 1000 / args.concurrency
        killed["remaining_ideal_seconds"] = round(ideal_rest, 2)
        killed["tick_plus_lease_seconds"] = args.tick + args.lease
        killed["expected_at_most_seconds"] = round(args.tick + args.lease + ideal_rest, 2)
        killed["within_expectation"] = killed["recovery_seconds"] <= killed["expected_at_most_seconds"]
        killed["asked_twice"] = len(twice)
        killed["asked_twice_all_in_flight_at_kill"] = twice <= set(claims)
        result["exactly_once"] = all(value == 1 for row, value in counts.items() if row not in claims)
    return result


def scale(args, database_url: str, sandbox: SandboxProcess) -> list[dict]:
    """One scheduled sweep per concurrency, each in a fresh child process, plus the sandbox's CPU."""
    runs = []
    for concurrency in args.scale:
        sandbox_cpu = proc_cpu_seconds(sandbox.pid)
        run = in_child(measure_sweep, database_url, sandbox.url, concurrency, args.latency_ms)
        used = proc_cpu_seconds(sandbox.pid) - sandbox_cpu
        checked = max(1, run["counts"]["checked"])
        run["sandbox_cpu_ms_per_check"] = round(used * 1000 / checked, 2)
        run["load_average"] = load_average()
        run |= one_host_per_interval(run, args.interval_hours)
        runs.append(run)
        print(f"  concurrency {concurrency:>3}: {run['seconds']:>7.2f}s = {run['vs_ideal']}x ideal, "
              f"{run['checks_per_second']}/s, {run['cpu_ms_per_check']} CPU ms/check "
              f"(sandbox {run['sandbox_cpu_ms_per_check']}), one host per {args.interval_hours:g} h: "
              f"{run['one_host_per_interval']:,} connections (CPU ceiling "
              f"{run['cpu_ceiling_checks_per_second']}/s)", flush=True)
    return runs


def one_host_per_interval(run: dict, interval_hours: float) -> dict:
    """At this rate, connections one host (one sweeper: the lock) checks in an interval; and
    the CPU ceiling, all cores busy on checks alone (the sandbox excluded)."""
    import os

    seconds = interval_hours * 3600
    ceiling = os.cpu_count() * 1000 / run["cpu_ms_per_check"] if run["cpu_ms_per_check"] else None
    return {"interval_hours": interval_hours,
            "one_host_per_interval": int(run["checks_per_second"] * seconds),
            "cpu_ceiling_checks_per_second": round(ceiling, 1) if ceiling else None,
            "cpu_ceiling_per_interval": int(ceiling * seconds) if ceiling else None}


def round_trips(args, database_url: str, sandbox: SandboxProcess) -> dict:
    """Database round trips per check of one scheduled sweep, counted on the wire."""
    wire = WireCounter.for_url(database_url)
    run = in_child(measure_sweep, wire.url(database_url), sandbox.url, args.scale[0], args.latency_ms)
    trips, _ = wire.snapshot()
    checked = max(1, run["counts"]["checked"])
    # The counted run also holds the reset UPDATE and the count/ids reads before the sweep.
    return {"concurrency": args.scale[0], "checked": run["counts"]["checked"],
            "round_trips_per_check": round(sum(trips.values()) / checked, 2),
            "by_kind_per_check": {k: round(v / checked, 2) for k, v in trips.most_common()},
            "note": "includes the bench's setup statements (~5 in all) before the sweep"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100, help="the sandbox's answer time")
    parser.add_argument("--hosts", type=int, default=3, help="processes with a scheduler")
    parser.add_argument("--concurrency", type=int, default=8, help="KEEPALIVE_CONCURRENCY of the hosts")
    parser.add_argument("--tick", type=float, default=2.0, help="seconds between scheduler ticks")
    parser.add_argument("--lease", type=float, default=10.0, help="KEEPALIVE_CLAIM_SECONDS")
    parser.add_argument("--interval-hours", type=float, default=6.0, help="KEEPALIVE_INTERVAL_HOURS")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction checked before the kill")
    parser.add_argument("--settle-ticks", type=int, default=2, help="ticks waited after each interval")
    parser.add_argument("--driver", choices=["scheduler", "loop"], default="scheduler")
    parser.add_argument("--scale", default="8,16,32", help="concurrencies for the scaling runs")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--output", type=Path, default=RESULTS / "sweep_cluster.json")
    args = parser.parse_args()
    args.scale = [int(c) for c in args.scale.split(",") if c.strip()]
    info = machine()
    out: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("output", "database")}}
    with throwaway_database(args.database) as database_url:
        sandbox = SandboxProcess()
        try:
            # Measure the sweep, not Meta's hourly budget (at 100 % the client rightly stops).
            sandbox.post("config", app_call_budget=10**9, call_log_limit=10**7)
            started = time.perf_counter()
            seeded = in_child(seed, database_url, sandbox.url, args.connections)
            print(f"seeded {len(seeded)} connections in {time.perf_counter() - started:.1f}s", flush=True)
            if not args.skip_cluster:
                out["cluster"] = cluster_run(args, database_url, sandbox, seeded)
            if not args.skip_scale:
                print("scaling (one sweep per concurrency, one process):", flush=True)
                out["scale"] = scale(args, database_url, sandbox)
                out["db_round_trips"] = round_trips(args, database_url, sandbox)
                print(f"  database round trips per check: {out['db_round_trips']['round_trips_per_check']}"
                      f" {out['db_round_trips']['by_kind_per_check']}", flush=True)
        finally:
            sandbox.close()
    write_results(args.output, {"machine": info | {"load_average_at_end": load_average()}} | out)


def cluster_run(args, database_url: str, sandbox: SandboxProcess, seeded) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sweep_cluster_"))
    cluster = HostCluster(workdir, {
        "database_url": database_url, "sandbox_url": sandbox.url, "concurrency": args.concurrency,
        "tick": args.tick, "lease": args.lease, "interval_hours": args.interval_hours,
        "driver": args.driver, "first_run_delay": 0.5})
    monitor = Monitor(database_url)
    try:
        sandbox.clear_calls()
        sandbox.post("config", latency_ms=args.latency_ms)
        cluster.start(args.hosts)
        first = interval(args, sandbox, cluster, monitor, seeded, kill=False)
        report("interval 1 (all due, no failure)", first)
        sandbox.clear_calls()
        sandbox.post("clock", advance_seconds=args.interval_hours * 3600 + 60)  # every one due again
        second = interval(args, sandbox, cluster, monitor, seeded, kill=True)
        report("interval 2 (sweeper killed -9)", second)
    except SystemExit as exc:
        print(f"{exc}; host logs in {workdir}", file=sys.stderr)
        raise
    finally:
        cluster.stop()
        monitor.close()
        sandbox.post("config", latency_ms=0)
    return {"hosts": args.hosts, "driver": args.driver, "intervals": [first, second]}


def report(title: str, result: dict) -> None:
    print(f"{title}: {result['connections']} connections in {result['seconds']}s; debug_token calls "
          f"per connection {json.dumps(result['debug_token_calls_per_connection'])}; exactly once: "
          f"{result['exactly_once']}; by process {json.dumps(result['by_process'])}", flush=True)
    if result["killed"]:
        killed = result["killed"]
        print(f"  killed pid {killed['pid']} at {killed['checked_at_kill']} checked "
              f"({killed['claimed_at_kill']} claimed); takeover {killed['takeover_seconds']}s, rest "
              f"done {killed['recovery_seconds']}s after the kill (tick + lease = "
              f"{killed['tick_plus_lease_seconds']}s, + remaining work at the ideal rate = "
              f"{killed['expected_at_most_seconds']}s: within {killed['within_expectation']}); asked "
              f"twice: {killed['asked_twice']} (all in flight at the kill: "
              f"{killed['asked_twice_all_in_flight_at_kill']})", flush=True)


if __name__ == "__main__":
    main()
