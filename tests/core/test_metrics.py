"""Prometheus metrics: the seed plan's names, fed by the real flow."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]



def test_metrics_after_a_connection(meta_flow, client):
    assert meta_flow.connect().status_code == 200
    meta_flow.client.get("/crm/auth/meta/callback?state=nope&code=x")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'meta_oauth_requests_total{endpoint="meta_callback",status="200"}' in text
    assert 'meta_oauth_errors_total{reason="invalid_state"}' in text
    assert 'meta_token_validations_total{result="valid"}' in text
    assert "meta_api_response_time_seconds_bucket" in text
    assert 'meta_connections{status="connected"} 1.0' in text
    line = next(x for x in text.splitlines() if x.startswith('meta_token_expires_in_hours{tenant="acme"}'))
    assert 55 * 24 < float(line.split()[-1]) <= 60 * 24


def test_multiprocess_mode_adds_up_every_worker(client, tmp_path, monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR set (as in the Docker image), /metrics includes what
    another worker process counted."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    other_worker = ("from crm_meta.infra import metrics; "
                    "metrics.OAUTH_ERRORS.labels(reason='seen_by_another_worker').inc(3)")
    subprocess.run([sys.executable, "-c", other_worker], cwd=ROOT, check=True, timeout=60,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert not [line for line in client.get("/metrics").get_data(as_text=True).splitlines()
                if "seen_by_another_worker" in line]  # without the setting: this process only
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'meta_oauth_errors_total{reason="seen_by_another_worker"} 3.0' in text
    assert "# HELP meta_connections" in text  # the per-scrape gauges are still there
