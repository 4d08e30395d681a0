"""Helpers shared by the benchmarks: ports, the sandbox in a process of its own, throwaway
PostgreSQL databases, child processes, and CPU and memory figures read from the OS."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The Meta app the sandbox registers and the benchmarked apps use (not a real Meta app).
APP_ID = "100000000000999"
APP_SECRET = "bench-app-secret-0123456789abcdef"
# https: production (api_bench) refuses a plain-http callback (config_checks.production_problem).
REDIRECT_URI = "https://localhost/crm/auth/meta/callback"
DEBUG_TOKEN = "/debug_token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SANDBOX_SCRIPT = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from meta_sandbox import create_sandbox_app, serve_in_thread
server = serve_in_thread(create_sandbox_app({APP_ID!r}, {APP_SECRET!r}, {REDIRECT_URI!r}),
                         port=int(sys.argv[1]))
print(server.url, flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxProcess:
    """The Meta sandbox served by a process of its own (threaded werkzeug, as in development)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SANDBOX_SCRIPT, str(free_port())],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise SystemExit("the sandbox did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def post(self, name: str, **body) -> dict:
        response = requests.post(f"{self.url}/_sandbox/{name}", json=body, timeout=120)
        response.raise_for_status()
        return response.json()

    def get(self, name: str) -> dict:
        response = requests.get(f"{self.url}/_sandbox/{name}", timeout=120)
        response.raise_for_status()
        return response.json()

    def clear_calls(self) -> None:
        requests.delete(f"{self.url}/_sandbox/calls", timeout=60).raise_for_status()

    def debug_calls(self) -> Counter:
        """debug_token calls per token id, from the sandbox's call log."""
        calls = self.get("calls")["calls"]
        return Counter(c["token_id"] for c in calls if c["path"].endswith(DEBUG_TOKEN))

    def close(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


@contextmanager
def throwaway_database(server_url: str, prefix: str = "crm_meta_bench") -> Iterator[str]:
    """A fresh database on the server of `server_url`, dropped (even with clients) at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def in_child(func, *args, **kwargs):
    """Run func in a fresh (spawned) process and return its result: the caller's memory and
    CPU figures stay its own, and the child's imports and settings stay out of the caller."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(func, *args, **kwargs).result()


# -- figures from the OS -----------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    # ru_maxrss: kilobytes on Linux, bytes on macOS; a high-water mark of the whole process.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of another process, from /proc/PID/stat (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def proc_rss_mb(pid: int) -> float | None:
    """Resident memory of a process now (VmRSS), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers under its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "load_average_at_start": load_average()}


def write_results(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"when": datetime.now(UTC).isoformat(timespec="seconds"), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


def wait_until(condition, what: str, limit: float, every: float = 0.1):
    """Poll until condition() is truthy; SystemExit naming `what` after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {limit:.0f}s")
        time.sleep(every)
