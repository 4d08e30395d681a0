"""LOG_FORMAT=json: one object per line, request ids in and out, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import config
from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from crm_meta.ops import logs
from crm_meta.runtime import runtime
from tests.helpers.settings import APP_SECRET, JWT_SECRET
from tests.helpers.users import PASSWORD, bearer

ROOT = Path(__file__).resolve().parents[2]


class JsonLog:
    """A JSON handler on the root logger, as LOG_FORMAT=json installs it, capturing DEBUG up."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logs.handler("json", self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def requests(self, route: str | None = None) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == "crm_meta.request"
                and (route is None or line["route"] == route)]


@pytest.fixture
def json_log():
    capture = JsonLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.DEBUG)  # urllib3 logs URLs at DEBUG: secrets must not be in them either
    yield capture
    root.removeHandler(capture.handler)
    root.setLevel(level)


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def test_the_flows_log_json_lines_with_context_and_never_a_secret(app, tenant, meta_flow, json_log):
    client, sandbox = meta_flow.client, meta_flow.sandbox
    codes = []
    started = meta_flow.start()
    location = sandbox.consent(started["auth_url"])
    codes.append(code_of(location))
    assert meta_flow.callback(location).status_code == 200
    started = meta_flow.start()  # again, as a browser: the callback redirects to the wizard
    location = sandbox.consent(started["auth_url"])
    codes.append(code_of(location))
    assert meta_flow.callback(location, accept="text/html").status_code == 302
    for path in ("/crm/marketing/token-status", "/crm/auth/meta/test-connection",
                 "/crm/auth/meta/debug/token", "/crm/marketing/meta-portfolios",
                 "/crm/marketing/meta-accounts"):
        assert client.get(path).status_code == 200, path
    account = client.get("/crm/marketing/meta-accounts").get_json()["data"][0]
    assert client.post("/crm/marketing/connect", json={"account_id": account["id"]}).status_code == 200
    headers = bearer(tenant.tenant_id, role="member")
    assert client.get("/crm/marketing/token-status", headers=headers).status_code == 200
    sandbox.fault(path="/v25.0/debug_token", code=190, error_subcode=463, count=1, inspect_error=True)
    assert client.get("/crm/auth/meta/test-connection").status_code == 200  # reports the dead token
    with app.app_context():
        token = runtime().store.read(db.session.scalar(db.select(MetaConnection)))
        user_id = db.session.scalar(db.select(MetaConnection.meta_user_id))
    signed = sandbox.post("signed-request", user_id=user_id)["signed_request"]
    assert client.post("/crm/meta/data-deletion", data={"signed_request": signed}).status_code == 200
    assert client.post("/crm/meta/deauthorize", data={"signed_request": signed}).status_code == 200
    assert client.post("/crm/auth/meta/disconnect").status_code == 200

    lines = json_log.lines()  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for secret in (token, *codes, APP_SECRET, signed, signed.split(".")[0], JWT_SECRET, PASSWORD,
                   headers["Authorization"].split()[1], app.config["ENCRYPTION_KEY"]):
        assert secret not in json_log.text
    assert "EAA" not in json_log.text

    status_lines = json_log.requests("/crm/marketing/token-status")
    assert [(line["actor"], line["tenant"]) for line in status_lines] == [
        (status_lines[0]["actor"], "acme"), ("jwt:crm-user-1", "acme")]
    assert status_lines[0]["actor"].startswith("user:")
    for line in json_log.requests():
        assert line["request_id"] and line["method"] and isinstance(line["status"], int)
        assert isinstance(line["duration_ms"], float)
    [deletion] = json_log.requests("/crm/meta/data-deletion")
    assert deletion["tenant"] is None and deletion["actor"] is None


def test_a_failed_graph_call_puts_metas_fbtrace_id_on_the_request_line(meta_flow, json_log):
    assert meta_flow.connect().status_code == 200
    meta_flow.sandbox.fault(path="/v25.0/debug_token", code=2, http_status=500, count=10)
    response = meta_flow.client.get("/crm/auth/meta/test-connection")
    assert response.status_code == 503
    request_id = response.headers["X-Request-ID"]
    failures = [line for line in json_log.lines() if line["logger"] == "crm_meta.meta.graph"
                and "graph" in line and line.get("request_id") == request_id]
    assert failures and all(line["fbtrace_id"] == line["graph"]["fbtrace_id"] for line in failures)
    [ended] = json_log.requests("/crm/auth/meta/test-connection")
    assert ended["request_id"] == request_id and ended["status"] == 503
    assert ended["fbtrace_id"] == failures[-1]["fbtrace_id"]
    assert ended["tenant"] == "acme"


def test_a_request_that_calls_no_graph_has_no_fbtrace_id(client, json_log):
    client.get("/healthz")
    [line] = json_log.requests("/healthz")
    assert "fbtrace_id" not in line and line["status"] == 200 and line["tenant"] is None


@pytest.mark.parametrize("given, kept", [
    ("0f8fad5b-d9cb-469f-a165-70867728950e", True), ("req:abc.DEF_123/x=+", True), ("a" * 128, True),
    ("a" * 129, False), ("two words", False), ('quote"d', False), ("<script>", False), ("", False),
    ("ünïcode", False),
])
def test_the_callers_request_id_is_kept_only_when_short_and_plain(client, json_log, given, kept):
    response = client.get("/healthz", headers={"X-Request-ID": given} if given else {})
    returned = response.headers["X-Request-ID"]
    assert (returned == given) is kept
    if not kept:
        assert len(returned) == 32 and returned.isalnum()
    [line] = json_log.requests("/healthz")
    assert line["request_id"] == returned


def test_generated_request_ids_differ_and_errors_get_one_too(client, json_log):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    missing = client.get("/no/such/page?token=query-secret-zq", headers={"Accept": "application/json"})
    assert first != second and missing.status_code == 404 and missing.headers["X-Request-ID"]
    line = json_log.requests()[-1]
    assert line["route"] is None and line["status"] == 404 and "query-secret-zq" not in json_log.text


def test_lines_outside_a_request_carry_no_request_fields(json_log):
    logging.getLogger("crm_meta.jobs").warning("outside %s", "any request")
    [line] = json_log.lines()
    assert line["message"] == "outside any request"
    assert not {"request_id", "tenant", "actor", "route"} & set(line)


def test_text_lines_show_the_request_id(client):
    stream = io.StringIO()
    handler = logs.handler("text", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        client.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
        logging.getLogger("crm_meta.jobs").warning("no request here")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert any("[trace-me-42] GET /healthz 200" in line for line in lines)
    assert any("[-] no request here" in line for line in lines)


def test_log_format_must_be_text_or_json():
    config.TestingConfig(LOG_FORMAT="json").validate()
    with pytest.raises(config.ConfigError, match="LOG_FORMAT"):
        config.TestingConfig(LOG_FORMAT="xml").validate()


def test_a_served_app_with_log_format_json_writes_only_json_to_stderr(tmp_path):
    script = ("from wsgi import app\n"  # the entry point gunicorn and `flask --app wsgi` load
              "client = app.test_client()\n"
              "client.get('/healthz', headers={'X-Request-ID': 'from-the-proxy'})\n"
              "client.get('/crm/marketing/token-status')\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "APP_ENV": "development", "LOG_FORMAT": "json", "FLASK_SKIP_DOTENV": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    routes = [(line.get("route"), line.get("status"), line.get("request_id")) for line in lines
              if line["logger"] == "crm_meta.request"]
    assert routes[0] == ("/healthz", 200, "from-the-proxy")
    assert routes[1][:2] == ("/crm/marketing/token-status", 401)
