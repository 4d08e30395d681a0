"""Where a gunicorn worker's request threads spend their time, by py-spy (`pip install py-spy`
into the venv; not a dependency of the project): samples of every thread, idle ones included
(a thread waiting on a lock is the point), kept when they are inside a request (Flask's
`wsgi_app`), then the share of those inside `logging` and inside `uuid4`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REQUEST = "wsgi_app ("
# py-spy names a frame `function (package/module.py:line)`.
PARTS = {
    "logging": ("(logging/__init__.py", "(logging/handlers.py", "(pythonjsonlogger/"),
    "logging_lock_wait": None,  # inside logging, waiting in Handler.acquire (the handler's lock)
    "log_redaction": ("(crm_meta/ops/redaction.py",),
    "uuid4": ("uuid4 (",),
    "jwt": ("(jwt/",),
    "sqlalchemy": ("(sqlalchemy/",),
    "flask_limiter": ("(flask_limiter/", "(limits/"),
    "ensure_sync": ("Flask.ensure_sync (",),  # also CrmMetaFlask.ensure_sync
    "envelope": ("(crm_meta/http/envelope.py",),
    "request_log_line": ("log_request (crm_meta/ops/logs.py",),
}


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, rate: int = 250, *, idle: bool = True) -> Path:
    """Raw collapsed stacks of every thread of `pid`; with idle=False only the samples of the
    thread holding the GIL (`--gil`: running Python), each stack headed by its thread."""
    out = Path(tempfile.mkdtemp(prefix="pyspy_")) / f"worker-{pid}.txt"
    flags = ["--idle"] if idle else ["--gil", "--threads"]
    subprocess.run([py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate",
                    str(rate), *flags, "--nonblocking", "--format", "raw", "--output", str(out)],
                   check=True, capture_output=True, text=True)
    return out


def summarise(raw: Path) -> dict:
    """Shares (%) of the request threads' samples; every stack of the file weighed by its count."""
    total, parts, leaves = 0, Counter(), Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if REQUEST not in stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for name, needles in PARTS.items():
            if needles and any(needle in stack for needle in needles):
                parts[name] += n
        if any("Handler.acquire (logging/" in frame for frame in frames[-2:]):
            parts["logging_lock_wait"] += n
        leaves[frames[-1]] += n
    return {"raw_file": str(raw), "request_samples": total,
            "share_percent": {name: round(100 * parts[name] / total, 1) if total else None
                              for name in PARTS},
            "top_leaves": [(frame, round(100 * n / total, 1)) for frame, n in leaves.most_common(12)]
            if total else []}


def summarise_cpu(raw: Path, top: int = 40) -> dict:
    """GIL-holding samples (record(idle=False)): the share of each kind of thread, and the functions
    whose frames hold the most samples (inclusive, each counted once per stack)."""
    total, kinds, inclusive, leaves = 0, Counter(), Counter(), Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        kinds[_thread_kind(stack)] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
        leaves[frames[-1]] += n
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: None)
    return {"raw_file": str(raw), "cpu_samples": total,
            "threads_percent": {kind: share(n) for kind, n in kinds.most_common()},
            "inclusive_percent": [(frame, share(n)) for frame, n in inclusive.most_common(top)],
            "top_leaves": [(frame, share(n)) for frame, n in leaves.most_common(15)]}


def _thread_kind(stack: str) -> str:
    if REQUEST in stack:
        return "request"
    for needle, kind in ((": crm-meta-inbox", "inbox_writer"), (": crm-meta-webhooks", "webhook_pass"),
                         ("gthread.py", "gunicorn_loop"), ("logqueue", "log_writer")):
        if needle in stack:
            return kind
    return "other"


if __name__ == "__main__":  # summarise a raw profile again: python bench/_pyspy.py FILE
    import json

    print(json.dumps(summarise(Path(sys.argv[1])), indent=1))
