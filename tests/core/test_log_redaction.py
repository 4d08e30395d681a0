"""No secret parameter reaches a log line, whoever writes it: the whole flow at DEBUG, served by
a real werkzeug server, with urllib3 logging every URL."""

from __future__ import annotations

import io
import logging
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from crm_meta.meta.graph import appsecret_proof
from crm_meta.meta.keepalive.sweep import Scope, run_sweep
from crm_meta.ops import redaction
from crm_meta.runtime import of, runtime
from tests.helpers.settings import APP_ID, APP_SECRET
from tests.helpers.users import bearer

DAY = 86400


@pytest.mark.parametrize(("line", "kept"), [
    ("GET /v25.0/debug_token?input_token=EAAGsecretvalue12345678901&x=1 HTTP/1.1", "&x=1"),
    ('127.0.0.1 "GET /crm/auth/meta/callback?code=AQzz-9_y&state=abc HTTP/1.1" 302', "state=abc"),
    ("client_id=1&client_secret=s3cr3t-v4lue&fb_exchange_token=tok123", "client_id=1"),
    ("appsecret_proof=deadbeef&signed_request=sig.payload", ""),
    ('{"access_token": "EAAB", "token_type": "bearer"}', '"token_type": "bearer"'),
    ("Authorization: Bearer 100000000000777|abcdefgh", "Authorization: Bearer"),
    ("code=AQcodeatthestart&grant_type=authorization_code", "grant_type"),
])
def test_secret_values_are_masked_and_the_rest_is_kept(line, kept):
    clean = redaction.redact(line)
    assert redaction.MASK in clean and kept in clean
    for secret in ("EAAGsecret", "AQzz", "s3cr3t", "tok123", "deadbeef", "sig.payload", "EAAB",
                   "abcdefgh", "AQcodeatthestart"):
        assert secret not in clean


# Texts glued from whole matches of each pattern (each alone is redacted), the pieces they are
# made of, the letters `(?i)` folds differently, and any other characters.
MATCHES = ["access_token=abc", "%63ode%3Dxyz", "?code=AQ1", "Cookie: abc", "set-cookie:x=1",
           "X-Admin-Token: abc", "x-sandbox-control-token:abc", "Bearer abcdefghij",
           "OAuth abcdefghij", "basic abcdefghij", "ba\u017fic abcdefghij", "cook\u0130e: abc",
           "'token': 'abc'", '"password" : "abc"', "EAAB" + "x" * 20, "eyJhbGci.eyJzdWIi.sig",
           "cmg_" + "A" * 24, "cms_" + "b" * 24, "s3cr3t-registered-value"]
PIECES = ["=", "%3D", "code", "token", ":", '"', "'", "EAA", "eyJ", "cms_", "abcdefghij", "?", "&",
          " ", "\n", "/"]
TEXTS = st.lists(st.one_of(st.sampled_from(MATCHES), st.sampled_from(PIECES), st.text(max_size=6)),
                 max_size=6).map("".join)


@settings(max_examples=1500, deadline=None, database=None, derandomize=True)
@given(text=TEXTS)
def test_the_quick_test_for_nothing_to_redact_never_skips_a_secret(text):
    """redact() skips the regex passes for a text without any of their hints: on every text it
    gives exactly what the full passes give (a hint missing from the list fails here)."""
    redaction.register("s3cr3t-registered-value")
    assert redaction.redact(text) == redaction._redact_all(text)


def test_our_own_error_codes_are_not_mistaken_for_secrets():
    line = "graph GET /me failed: token_invalid code=190 subcode=463 fbtrace_id=Abc"
    assert redaction.redact(line) == line


def test_installing_twice_wraps_the_factory_once(app):
    factory = logging.getLogRecordFactory()
    redaction.install()
    redaction.install()
    assert logging.getLogRecordFactory() is factory and getattr(factory, redaction._MARK)


def test_exceptions_and_extras_are_redacted_too(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s url=%(url)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    redaction.install()  # a handler added later (gunicorn's, a JSON one) gets the filter too
    try:
        try:
            raise ValueError("failed url /debug_token?input_token=EAAGinsideanexception0000")
        except ValueError:
            logger.exception("boom %s", "client_secret=verysecret", extra={"url": "x?access_token=t0k3n"})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "EAAGinside" not in output and "verysecret" not in output and "Traceback" in output
    assert "t0k3n" not in output and f"url=x?access_token={redaction.MASK}" in output


@pytest.mark.parametrize(("extras", "secret"), [
    ({"tenant": "acme", "actor": "cms_" + "k" * 24}, "k" * 24),  # one extra of several holds it
    ({"route": "/x", "graph": {"access_token": "plain-value-no-hint"}}, "plain-value-no-hint"),
    ({"route": "/x", "calls": [{"appsecret_proof": "abc123abc"}]}, "abc123abc"),
])
def test_a_record_with_a_clean_message_still_has_its_extras_redacted(extras, secret):
    """The record is scanned once for hints (message and text extras together): a secret in any
    one text extra, or under a secret key of a dict or list extra, is still masked."""
    record = logging.LogRecord("tests", logging.INFO, __file__, 1, "GET %s 200", ("/crm/x",), None)
    record.__dict__.update(extras)
    redaction.redact_record(record)
    assert secret not in repr(vars(record)) and record.getMessage() == "GET /crm/x 200"


@pytest.fixture
def served(app):
    """The app on a real werkzeug server whose request log carries full URLs (query strings)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_whole_flow_at_debug_logs_no_secret(app, served, sandbox, tenant):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in ("urllib3", "werkzeug", "crm_meta")}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in saved[1]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        secrets_seen = run_flow(app, served, sandbox, tenant)
        logging.getLogger("gunicorn.error").info("worker saw %s", secrets_seen["callback_url"])
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)
    output = stream.getvalue()
    # The log really covered the flow: request lines with query strings, urllib3's URLs.
    assert "/crm/auth/meta/callback?code=[REDACTED]" in output
    assert "/debug_token?input_token=[REDACTED]" in output
    assert "oauth/access_token" in output
    for name, value in secrets_seen.items():
        if name != "callback_url":
            assert value not in output, f"{name} leaked into the log"
    assert "EAA" not in output


def run_flow(app, served, sandbox, tenant) -> dict:
    """Connect, check, inspect and extend through the served app; returns every secret used."""
    http = requests.Session()
    headers = bearer(tenant.tenant_id)
    data = http.get(f"{served}/crm/auth/meta/url", headers=headers, timeout=10).json()["data"]
    location = sandbox.consent(data["auth_url"])
    parts = urlsplit(location)
    callback_url = f"{served}{parts.path}?{parts.query}"
    response = http.get(callback_url, headers={"Accept": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    for path in ("/crm/auth/meta/test-connection", "/crm/auth/meta/debug/token"):
        assert http.get(f"{served}{path}", headers=headers, timeout=30).status_code == 200
    with app.app_context():
        from crm_meta.infra.database import db
        from crm_meta.models import MetaConnection

        row = db.session.scalar(db.select(MetaConnection))
        first_token, row_id = runtime().store.read(row), row.id
    sandbox.advance(50 * DAY)  # close to its end: the sweep exchanges it (fb_exchange_token)
    run_sweep(app, of(app), Scope(row_ids=[row_id], forced=True))
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        current = runtime().store.read(row)
    return {"code": parse_qs(parts.query)["code"][0], "token": first_token, "current": current,
            "app_secret": APP_SECRET, "app_token": f"{APP_ID}|{APP_SECRET}",
            "proof": appsecret_proof(APP_SECRET, first_token), "callback_url": callback_url}


def test_gunicorn_installs_it_before_it_serves():
    import runpy
    from pathlib import Path

    settings = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    saved = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)  # a fresh process: nothing installed yet
    try:
        settings["on_starting"](None)
        assert getattr(logging.getLogRecordFactory(), redaction._MARK, False)
    finally:
        logging.setLogRecordFactory(saved)
