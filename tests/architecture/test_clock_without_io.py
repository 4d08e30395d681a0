"""`now()` never does network I/O: the in-app sandbox's clock is read in-process (issue 15, item 4)."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from config import DevelopmentConfig
from crm_meta import runtime
from crm_meta.app import create_app
from crm_meta.infra.clock import InAppSandboxClock


def test_the_in_app_sandbox_clock_is_read_without_a_request(tmp_path, monkeypatch):
    # `make run`'s configuration: the sandbox mounted in this very app at /sandbox/meta.
    app = create_app(DevelopmentConfig({"DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}"},
                                       INSTANCE_PATH=str(tmp_path)))
    parts = runtime.of(app)
    assert isinstance(parts.clock, InAppSandboxClock)

    def no_network(*args, **kwargs):
        raise AssertionError("now() made an HTTP call")

    monkeypatch.setattr(requests.Session, "request", no_network)
    answer = app.test_client().post("/sandbox/meta/_sandbox/clock", json={"advance_seconds": 86400},
                                    environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 200
    ahead = (parts.clock.now() - datetime.now(UTC)).total_seconds()
    assert 86000 < ahead < 86800  # the sandbox's day ahead, read in-process
