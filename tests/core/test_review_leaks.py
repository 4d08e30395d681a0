"""Review 2's leaked strings: none reaches any log line, whoever writes it, in text or JSON, and
through a real gunicorn's "Invalid HTTP request line" warning; redacting twice changes nothing."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys

import jwt
import pytest
import requests

from crm_meta.ops import logs
from crm_meta.ops import redaction as logredact
from tests.helpers.settings import ROOT
from tests.helpers.waiting import wait_for

CMS_KEY = "cms_" + secrets.token_urlsafe(32)
CMG_KEY = "cmg_" + secrets.token_urlsafe(32)
CRM_JWT = jwt.encode({"user_id": "7", "tenant_id": 1, "role": "ceo"}, "k" * 32, algorithm="HS256")
PASSWORD = "hunter2-" + secrets.token_hex(6)
ADMIN_TOKEN = "crm-admin-" + secrets.token_hex(8)
SESSION = "sess-" + secrets.token_hex(10)
BINDING = "bind-" + secrets.token_hex(10)
CODE = "AQcode" + secrets.token_hex(8)
PERCENT_TOKEN = "pct-" + secrets.token_hex(10)

# (what the review saw in a log, the secret inside it)
LEAKS = [
    (f"GET /internal/meta/connections/acme/credentials key={CMS_KEY}", CMS_KEY),
    (f"Authorization: Bearer {CMS_KEY}", CMS_KEY),
    (f"gateway call with {CMG_KEY} refused", CMG_KEY),
    (f"GET /crm/marketing/token-status?token={CRM_JWT}", CRM_JWT),
    (f"bare {CRM_JWT} in a message", CRM_JWT),
    (f"POST /login password={PASSWORD}&email=a@b.test", PASSWORD),
    (f"X-Admin-Token: {ADMIN_TOKEN}", ADMIN_TOKEN),
    (f"{{'X-Admin-Token': '{ADMIN_TOKEN}', 'Accept': 'application/json'}}", ADMIN_TOKEN),
    (f"Cookie: access_token={CRM_JWT}; session={SESSION}; crm_meta_oauth={BINDING}", SESSION),
    (f"Cookie: access_token={CRM_JWT}; session={SESSION}; crm_meta_oauth={BINDING}", BINDING),
    (f"Set-Cookie: __Host-crm_meta_oauth={BINDING}; Secure; HttpOnly; Path=/", BINDING),
    (f"GET /crm/auth/meta/callback?%63ode={CODE}&state=x", CODE),
    (f"GET /crm/auth/meta/callback?state=x&%63%6Fde={CODE}", CODE),
    (f"GET /internal/x?access%5Ftoken={PERCENT_TOKEN}", PERCENT_TOKEN),
    (f"GET /internal/x?access%255Ftoken={PERCENT_TOKEN}", PERCENT_TOKEN),  # encoded twice
    (f'{{"password": "{PASSWORD}", "email": "a@b.test"}}', PASSWORD),
]


@pytest.mark.parametrize("line, secret", LEAKS)
def test_each_leaked_string_is_redacted_and_redacting_twice_changes_nothing(line, secret):
    once = logredact.redact(line)
    assert secret not in once and logredact.MASK in once
    assert logredact.redact(once) == once
    assert "[REDACTED]]" not in once and "[REDACTED][REDACTED]" not in once


@pytest.mark.parametrize("line", [
    "graph GET /me failed: token_invalid code=190 subcode=463 fbtrace_id=Abc",
    "audit login failure tenant=1 actor=email:ana@acme.test",
    "GET /crm/marketing/token-status 200 in 3.1ms",
    "services list: cms_AbCdEfGh… marketing",  # the displayed prefix of `services list`
])
def test_ordinary_lines_are_left_alone(line):
    assert logredact.redact(line) == line


def test_secret_keys_of_extra_fields_are_masked():
    assert logredact._clean({"password": PASSWORD, "X-Admin-Token": ADMIN_TOKEN, "n": 1}) == {
        "password": logredact.MASK, "X-Admin-Token": logredact.MASK, "n": 1}


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("name", ["crm_meta.anything", "gunicorn.error", "werkzeug", "urllib3", ""])
def test_no_logger_writes_any_of_them(app, keep_logging, log_format, name):
    stream = io.StringIO()
    handler = logs.handler(log_format, stream)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logredact.install()
    try:
        for line, _secret in LEAKS:
            logger.warning(line)
            logger.warning("with args: %s", line)
            logger.info("in extra", extra={"detail": line, "headers": {"Cookie": line}})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") == 3 * len(LEAKS)
    if log_format == "json":
        assert all(json.loads(row)["message"] for row in output.splitlines())
    for _line, secret in LEAKS:
        assert secret not in output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The leaks as a client would put them in a request line gunicorn refuses (two words).
REQUEST_LINES = [
    (f"GET /internal/meta/connections/acme/credentials?key={CMS_KEY}", CMS_KEY),
    (f"GET /gateway/graph/me?k={CMG_KEY}", CMG_KEY),
    (f"GET /crm/marketing/token-status?token={CRM_JWT}", CRM_JWT),
    (f"POST /login?email=a@b.test&password={PASSWORD}", PASSWORD),
    (f"GET /crm/auth/meta/url?X-Admin-Token={ADMIN_TOKEN}", ADMIN_TOKEN),
    (f"GET /crm/auth/meta/callback?session={SESSION}&crm_meta_oauth={BINDING}", SESSION),
    (f"GET /crm/auth/meta/callback?session={SESSION}&crm_meta_oauth={BINDING}", BINDING),
    (f"X-Admin-Token: {ADMIN_TOKEN}", ADMIN_TOKEN),
    (f"Cookie: session={SESSION}", SESSION),
    *[(line, secret) for line, secret in LEAKS if "%" in line],
]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_real_gunicorn_logs_none_of_them(tmp_path, log_format):
    """Gunicorn's own warning quotes a bad request line as received; each leak goes in one."""
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "APP_ENV": "development", "LOG_FORMAT": log_format, "FLASK_SKIP_DOTENV": "1",
           "HOST": "127.0.0.1", "PORT": str(port), "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "SECRET_KEY": "s" * 40,
           "JWT_SECRET_KEY": "j" * 40, "ENCRYPTION_KEY": "e" * 44, "META_APP_SECRET": "a" * 32}
    stderr = (tmp_path / "stderr").open("w+")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=ROOT, env=env, stdout=stderr, stderr=stderr)
    try:
        wait_for(lambda: _answers(port), "gunicorn to serve")
        for line, _secret in REQUEST_LINES:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                # Two words, no version: gunicorn refuses it as an invalid request line.
                conn.sendall(line.encode() + b"\r\n\r\n")
                assert b"400" in conn.recv(4096).split(b"\r\n")[0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    stderr.seek(0)
    output = stderr.read()
    stderr.close()
    assert output.count("Invalid request from ip=") == len(REQUEST_LINES), output[-2000:]
    for _line, secret in REQUEST_LINES:
        assert secret not in output, f"{secret} leaked:\n{output[-3000:]}"


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
