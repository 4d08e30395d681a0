"""sweep_cluster_bench.py's moving parts: the stand-in hosts (processes running
bench/_cluster_host.py) and a monitor that reads the sweep's progress from the database."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from _common import ROOT, stop, wait_until

HOST_SCRIPT = Path(__file__).with_name("_cluster_host.py")


class HostCluster:
    """N processes that sweep as their schedulers would, released together once all are up."""

    def __init__(self, workdir: Path, settings: dict):
        self.workdir = workdir
        self.settings = settings
        self.procs: dict[int, subprocess.Popen] = {}
        self.events: list[Path] = []

    @property
    def pids(self) -> list[int]:
        return list(self.procs)

    def start(self, count: int) -> None:
        go, ready = self.workdir / "go", []
        for index in range(count):
            ready.append(self.workdir / f"ready-{index}")
            self.events.append(self.workdir / f"events-{index}.jsonl")
            with (self.workdir / f"host-{index}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, str(HOST_SCRIPT), json.dumps(self.settings), str(ready[-1]),
                     str(go), str(self.events[-1])], cwd=ROOT, stdout=log, stderr=log)
            self.procs[proc.pid] = proc

        def all_ready():
            for proc in self.procs.values():
                if proc.poll() is not None:
                    raise SystemExit(f"a host exited early (logs in {self.workdir})")
            return all(path.exists() for path in ready)

        wait_until(all_ready, "the hosts to start", 120, every=0.05)
        go.touch()

    def reap(self, pid: int) -> None:
        self.procs.pop(pid).wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)
        self.procs.clear()


class Monitor:
    """Progress of a sweep as the database shows it."""

    def __init__(self, database_url: str):
        from sqlalchemy import create_engine

        from crm_meta.models import MetaConnection

        self.engine = create_engine(database_url, pool_size=1)
        self.table = MetaConnection.__table__

    def progress(self, since: datetime) -> int:
        """Connections checked at or after `since` (domain time) and no longer claimed."""
        from sqlalchemy import func, select

        t = self.table
        query = select(func.count()).where(t.c.last_checked_at >= since, t.c.claimed_by.is_(None))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def first_check_after(self, moment: datetime) -> datetime | None:
        """The earliest check (its start, in domain time) at or after `moment`."""
        from sqlalchemy import func, select

        t = self.table
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(t.c.last_checked_at))
                                .where(t.c.last_checked_at >= moment)).scalar_one()

    def claims(self) -> dict[int, int]:
        """Claimed connections and the pid of the process holding each (from the claim id,
        `host:pid:nonce`)."""
        from sqlalchemy import select

        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.id, t.c.claimed_by).where(t.c.claimed_by.is_not(None))).all()
        return {row_id: int(owner.rsplit(":", 2)[1]) for row_id, owner in rows}

    def close(self) -> None:
        self.engine.dispose()


def per_process(events: list[Path], start: float, end: float) -> dict[str, dict]:
    """Per host pid, between two wall-clock times: sweeps that checked something, connections
    checked, and ticks skipped because another process held the lock."""
    out: dict[str, dict] = {}
    for path in events:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if not start <= event["t"] <= end:
                continue
            mine = out.setdefault(str(event["pid"]), {"sweeps": 0, "checked": 0, "skipped_ticks": 0})
            if event["counts"]:
                mine["sweeps"] += 1
                mine["checked"] += event["counts"].get("checked", 0)
            elif "skipped" in event["message"]:
                mine["skipped_ticks"] += 1
    return out

