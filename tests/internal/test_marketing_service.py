"""Done when: a script acting as the CRM's marketing service lists a tenant's campaigns through
the proxy, sees throttling honoured across two processes, and never holds the token.

Two real crm-meta processes (stand-ins for two hosts) share PostgreSQL and Redis; the script
talks to them over HTTP with nothing but its service key.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers.graph import every_page
from tests.helpers.sandbox import ACCOUNT

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
SHARED = ("SQLALCHEMY_DATABASE_URI", "META_APP_ID", "META_APP_SECRET", "META_REDIRECT_URI", "META_MODE",
          "META_DIALOG_URL", "META_GRAPH_URL", "ENCRYPTION_KEY", "SECRET_KEY", "JWT_SECRET_KEY",
          "META_HTTP_RETRIES", "META_SCOPES", "RATELIMIT_ENABLED", "REDIS_URL", "META_GOVERNOR_KEY_PREFIX")
CAMPAIGNS = f"/internal/meta/connections/acme/graph/{ACCOUNT}/campaigns"


@pytest.fixture
def shared_app(make_app, postgres_url, redis_url):
    return make_app(postgres_url, REDIS_URL=redis_url,
                    META_GOVERNOR_KEY_PREFIX=f"test-governor:{uuid.uuid4().hex[:8]}")


@pytest.fixture
def servers(shared_app, tmp_path):
    """Two crm-meta processes on the same database, Redis and sandbox."""
    settings = json.dumps({key: shared_app.config[key] for key in SHARED})
    procs, urls = [], []
    for index in range(2):
        portfile = tmp_path / f"port-{index}"
        command = [sys.executable, "-m", "tests.internal.server", settings, str(portfile)]
        procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 60  # a bound on waiting for start-up, not a timing assertion
        while not portfile.exists() or not portfile.read_text():
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server {index} did not start: {procs[-1].communicate()[1][-2000:]}")
            time.sleep(0.02)
        urls.append(f"http://127.0.0.1:{portfile.read_text()}")
    yield urls
    for proc in procs:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the stderr pipe


class MarketingService:
    """What CRM Ventas' marketing service does, with only its key: every answer it saw is kept."""

    def __init__(self, key: str):
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.seen: list[str] = []

    def get(self, url: str, **params) -> requests.Response:
        response = self.http.get(url, params=params, timeout=10)
        self.seen.append(response.text + json.dumps(dict(response.headers)))
        return response

    def campaigns(self, base: str) -> list[dict]:
        """Every campaign of the account, page by page, following the proxy's own next links."""
        response = self.get(base + CAMPAIGNS, fields="name,status,objective", limit="2")

        def check(link):
            assert link.geturl().startswith(base + CAMPAIGNS)

        return every_page(response, self.get, check)


def test_the_marketing_service_syncs_campaigns_through_two_processes(shared_app, servers, connect,
                                                                     make_key, sandbox, stored_token):
    first, second = servers
    acme = connect("acme", app_=shared_app)
    key = make_key("marketing", scopes=("graph:proxy",), app_=shared_app)
    service = MarketingService(key.key)

    campaigns = service.campaigns(first)
    assert len(campaigns) == 3 and all(c["objective"].startswith("OUTCOME_") for c in campaigns)
    assert service.campaigns(second) == campaigns

    # Meta throttles the account's business (80004, back in 5 minutes) on a call through one process...
    sandbox.fault(f"/v25.0/{ACCOUNT}/campaigns", code=80004, regain_minutes=5)
    throttled = service.get(first + CAMPAIGNS)
    assert throttled.status_code == 400 and throttled.json()["error"]["code"] == 80004
    assert throttled.headers["Retry-After"] == "300"
    # ...and the other process refuses at once, without calling Meta.
    before = len(sandbox.calls())
    held = service.get(second + CAMPAIGNS)
    assert held.status_code == 429 and held.json()["error"]["code"] == 613  # Meta's ad-account throttle
    assert held.json()["error"]["is_transient"] is True
    wait = int(held.headers["Retry-After"])
    assert 290 <= wait <= 300
    assert len(sandbox.calls()) == before
    # The service honours Retry-After (the sandbox's clock moves instead of the test sleeping).
    sandbox.advance(wait + 1)
    assert [c["id"] for c in service.campaigns(second)] == [c["id"] for c in campaigns]

    # It never held the token: not in anything it received, and no credentials for its key.
    assert service.get(first + "/internal/meta/connections/acme/credentials").status_code == 403
    token = stored_token(shared_app, acme.tenant_id)
    assert not any(token in text for text in service.seen)


def test_usage_headers_seen_by_one_process_hold_the_other(shared_app, servers, connect, make_key, sandbox):
    first, second = servers
    connect("acme", app_=shared_app)
    service = MarketingService(make_key("marketing", scopes=("graph:proxy",), app_=shared_app).key)
    sandbox.post("config", app_call_budget=1)  # Meta now reports the app at 100% of its budget
    assert service.get(first + CAMPAIGNS).status_code == 200
    before = len(sandbox.calls())
    held = service.get(second + CAMPAIGNS)
    assert held.status_code == 429 and int(held.headers["Retry-After"]) <= 60
    insights = service.get(second + f"/internal/meta/connections/acme/graph/{ACCOUNT}/insights")
    assert insights.status_code == 429  # the whole app is held, every path
    assert len(sandbox.calls()) == before
