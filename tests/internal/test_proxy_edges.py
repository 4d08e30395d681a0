"""The proxy's edges (issue 19, item 6): paging links from API_BASE_URL (never the request's
Host), a chunked body over MAX_CONTENT_LENGTH refused with 413 (never truncated and forwarded,
through a real server on a port), 5,000 levels of nested JSON a 400 envelope on every route."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from meta_sandbox.server import serve_in_thread
from tests.helpers.graph import assert_graph_error
from tests.helpers.sandbox import ACCOUNT
from tests.internal.tokens import PROXY

DEEP = ("[" * 5000 + "]" * 5000).encode()
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("SQLALCHEMY_DATABASE_URI", "META_APP_ID", "META_APP_SECRET", "META_REDIRECT_URI", "META_MODE",
            "META_DIALOG_URL", "META_GRAPH_URL", "ENCRYPTION_KEY", "SECRET_KEY", "JWT_SECRET_KEY",
            "META_HTTP_RETRIES", "RATELIMIT_ENABLED", "MAX_CONTENT_LENGTH")


@pytest.fixture
def live(make_app, connect, make_key):
    """The app on a real port (werkzeug, threaded), a tenant connected, a proxy-only key."""
    servers = []

    def factory(**settings):
        app = make_app(**settings)
        connect("acme", app_=app)
        key = make_key("marketing", scopes=("graph:proxy",), app_=app)
        server = serve_in_thread(app)
        servers.append(server)
        return server, key

    yield factory
    for server in servers:
        server.shutdown()


def send_chunked(server, key, path: str, body: bytes, content_type="application/json"):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (body[i:i + 1000] for i in range(0, len(body), 1000))
    connection.request("POST", path, body=chunks, encode_chunked=True,
                       headers={"Authorization": f"Bearer {key.key}", "Content-Type": content_type,
                                "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    result = response.status, response.read()
    connection.close()
    return result


def test_paging_links_are_built_from_api_base_url_not_the_host_header(make_app, connect, make_key):
    app = make_app(API_BASE_URL="https://crm.example.test")
    connect("acme", app_=app)
    key = make_key("marketing", scopes=("graph:proxy",), app_=app)
    response = app.test_client().get(PROXY.format("acme", f"{ACCOUNT}/insights"), headers={
        **key.headers, "Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        query_string={"date_preset": "last_7d", "time_increment": "1", "limit": "2"})
    link = response.get_json()["paging"]["next"]
    assert link.startswith(f"https://crm.example.test/internal/meta/connections/acme/graph/{ACCOUNT}/insights?")
    assert "evil" not in response.get_data(as_text=True)


def test_without_api_base_url_paging_links_carry_no_host_at_all(app, client, connect, make_key):
    connect("acme")
    key = make_key("marketing", scopes=("graph:proxy",))
    response = client.get(PROXY.format("acme", f"{ACCOUNT}/insights"), headers={**key.headers,
                          "Host": "evil.example"}, query_string={"time_increment": "1", "limit": "2"})
    link = response.get_json()["paging"]["next"]
    assert urlsplit(link).netloc == "" and link.startswith("/internal/meta/connections/acme/graph/")


def too_large(answer: bytes) -> bool:
    """The proxy's 413, as Graph's error body (issue 19) naming our reason."""
    error = json.loads(answer)["error"]
    return error["code"] == 100 and error["error_data"] == {"reason": "payload_too_large"}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_chunked_body_over_the_limit_is_refused_never_truncated_and_forwarded(live, sandbox, content_type):
    server, key = live(MAX_CONTENT_LENGTH=4096)
    fields = {"name": "Invierno " + "x" * 6000, "objective": "OUTCOME_LEADS", "status": "PAUSED",
              "special_ad_categories": "[]", "daily_budget": "5000"}
    body = (json.dumps(fields) if content_type == "application/json"
            else "&".join(f"{k}={v}" for k, v in fields.items())).encode()
    before = len(sandbox.calls())
    url = PROXY.format("acme", f"{ACCOUNT}/campaigns")
    status, answer = send_chunked(server, key, url, body, content_type)
    assert status == 413, answer
    assert too_large(answer)
    assert len(sandbox.calls()) == before  # nothing reached Meta


@pytest.fixture
def under_gunicorn(make_app, connect, make_key):
    """The app served by gunicorn (gthread, as the image runs it) on the same database."""
    app = make_app(MAX_CONTENT_LENGTH=4096)
    connect("acme", app_=app)
    key = make_key("marketing", scopes=("graph:proxy",), app_=app)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CRM_META_TEST_SETTINGS": json.dumps({k: app.config[k] for k in SETTINGS}),
           "PORT": str(port), "HOST": "127.0.0.1", "GUNICORN_WORKERS": "1", "SCHEDULER_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                             "tests.internal.gunicorn_app:build()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # a bound on waiting for start-up, not a timing assertion
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"gunicorn did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.05)
    yield type("Served", (), {"port": port})(), key
    proc.terminate()
    proc.communicate(timeout=20)


def test_under_gunicorn_a_chunked_body_over_the_limit_is_refused_too(under_gunicorn, sandbox):
    server, key = under_gunicorn
    body = "&".join(f"{k}={v}" for k, v in {"name": "x" * 6000, "objective": "OUTCOME_LEADS",
                                              "special_ad_categories": "[]", "daily_budget": "5000"}.items())
    before = len(sandbox.calls())
    url = PROXY.format("acme", f"{ACCOUNT}/campaigns")
    status, answer = send_chunked(server, key, url, body.encode(), "application/x-www-form-urlencoded")
    assert status == 413 and too_large(answer)
    small = json.dumps({"name": "Invierno", "objective": "OUTCOME_LEADS", "status": "PAUSED",
                        "special_ad_categories": [], "daily_budget": "5000"}).encode()
    status, answer = send_chunked(server, key, url, small)
    assert status == 200, answer
    assert len(sandbox.calls()) == before + 1  # only the whole, small body reached Meta


def test_a_chunked_body_under_the_limit_is_forwarded_whole(live, sandbox):
    server, key = live(MAX_CONTENT_LENGTH=4096)
    body = json.dumps({"name": "Invierno", "objective": "OUTCOME_LEADS", "status": "PAUSED",
                       "special_ad_categories": [], "daily_budget": "5000"}).encode()
    status, answer = send_chunked(server, key, PROXY.format("acme", f"{ACCOUNT}/campaigns"), body)
    assert status == 200, answer
    campaign = json.loads(answer)["id"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", PROXY.format("acme", campaign) + "?fields=name,daily_budget",
                 headers={"Authorization": f"Bearer {key.key}"})
    read = json.loads(conn.getresponse().read())
    assert read == {"name": "Invierno", "daily_budget": "5000", "id": campaign}
    conn.close()


def test_deeply_nested_json_is_a_400_through_the_proxy(app, client, connect, make_key, sandbox):
    connect("acme")
    key = make_key("marketing", scopes=("graph:proxy",))
    before = len(sandbox.calls())
    response = client.post(PROXY.format("acme", f"{ACCOUNT}/campaigns"), data=DEEP,
                           headers={**key.headers, "Content-Type": "application/json"})
    assert_graph_error(response, 400, 100, "bad_request")  # as Graph refuses a body it cannot read
    assert len(sandbox.calls()) == before


@pytest.mark.openapi_unchecked(reason="every route, documented or not, with a body it never expects")
def test_deeply_nested_json_is_never_a_500_on_any_route(app, client, auth, connect):
    auth.login(connect("acme").admin_email)
    seen = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", "acme").replace(f"<path:{arg}>", "x/y")
            path = path.replace(f"<int:{arg}>", "1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data=DEEP, content_type="application/json")
            assert response.status_code != 500, (method, path, response.get_data(as_text=True)[:300])
            seen += 1
    assert seen > 30
