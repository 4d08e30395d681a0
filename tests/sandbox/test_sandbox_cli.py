"""`flask meta sandbox` serves the emulator on its own port."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_flask_meta_sandbox_serves_the_configured_app(tmp_path):
    port = free_port()
    env = {**os.environ, "META_APP_ID": "424242", "META_APP_SECRET": "cli-secret",
           "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", "SCHEDULER_ENABLED": "0"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "meta", "sandbox", "--port", str(port)]
    process = subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                clock = requests.get(f"http://127.0.0.1:{port}/_sandbox/clock", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.2)
        assert clock.json()["offset_seconds"] == 0
        dialog = requests.get(f"http://127.0.0.1:{port}/v25.0/dialog/oauth", timeout=5, params={
            "client_id": "424242", "redirect_uri": "http://localhost:8000/crm/auth/meta/callback",
            "state": "s", "scope": "ads_management"})
        assert dialog.status_code == 200 and "424242" in dialog.text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in output
