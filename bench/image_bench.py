"""The production image: its size (and the base's) and its cold start, from `run` to the first
200 from /healthz, migrations of an empty database included. By hand, after `make image`:

    .venv/bin/python bench/image_bench.py [--runs 5]

Each run starts the image as docs/deploy.md does (read-only root, tmpfs /tmp), on the host's
network against a throw-away PostgreSQL database, and is removed afterwards. Figures go to
bench/results/image.json with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
ENGINE = os.environ.get("CONTAINER_ENGINE") or shutil.which("podman") or "docker"
IMAGE = os.environ.get("IMAGE", "crm-meta:latest")
PG = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def size(image: str) -> int | None:
    out = subprocess.run([ENGINE, "image", "inspect", "--format", "{{.Size}}", image],
                         capture_output=True, text=True, check=False)
    return int(out.stdout) if out.returncode == 0 else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cold_start() -> dict:
    port, tag = free_port(), secrets.token_hex(3)
    name, db = f"crm-meta-bench-{tag}", f"bench_image_{tag}"
    admin = psycopg2.connect(PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    env = {"PORT": str(port), "HOST": "127.0.0.1", "SECRET_KEY": secrets.token_urlsafe(48),
           "JWT_SECRET_KEY": secrets.token_urlsafe(48), "META_APP_ID": "1", "META_APP_SECRET": "x" * 32,
           "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
           "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback",
           "DATABASE_URL": urlsplit(PG)._replace(path=f"/{db}").geturl()}
    args = [ENGINE, "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
    if ENGINE.endswith("podman"):
        args.append("--read-only-tmpfs=false")
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    try:
        t0 = time.monotonic()
        subprocess.run([*args, IMAGE], check=True, capture_output=True)
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - t0 > 180:
                raise RuntimeError("no /healthz after 180 s")
            time.sleep(0.05)
        return {"seconds_to_healthz": round(time.monotonic() - t0, 2)}
    finally:
        subprocess.run([ENGINE, "rm", "-f", "-t", "0", name], capture_output=True, check=False)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    load_before = os.getloadavg()
    runs = [cold_start()["seconds_to_healthz"] for _ in range(opts.runs)]
    base = json.loads(subprocess.run([ENGINE, "image", "inspect", IMAGE], capture_output=True, text=True,
                                     check=True).stdout)[0]
    base_name = "localhost/crm-meta-base:python3.11-slim-bookworm"
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "engine": Path(ENGINE).name,
        "image": IMAGE, "image_bytes": size(IMAGE), "base": base_name, "base_bytes": size(base_name),
        "layers": len(base.get("RootFS", {}).get("Layers", [])),
        "cold_start_seconds": runs, "cold_start_median": statistics.median(runs),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    out = ROOT / "bench" / "results" / "image.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
