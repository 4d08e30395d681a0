"""`flask meta doctor` against the live sandbox: passes as configured, fails naming the cause."""

from __future__ import annotations

import json
import socket

import pytest

from config import DevelopmentConfig
from crm_meta.app import create_app
from crm_meta.infra.database import db
from meta_sandbox import serve_in_thread
from tests.helpers.settings import APP_SECRET


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox):
    """The shared sandbox without a fault another test injected (the doctor asks Meta for real)."""
    return sandbox


def doctor(app, *args):
    return app.test_cli_runner().invoke(args=["meta", "doctor", *args])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_check_passes_against_the_sandbox(make_app):
    result = doctor(make_app())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in ("reachable", "app credential", "graph version", "clock", "redirect uri",
                 "scopes", "login config"):
        assert any(line.startswith(f"ok   {name}:") for line in lines), result.output
    assert "v25.0 is served;" in result.output and "days to its sunset" in result.output
    assert lines[-1] == "all checks passed"
    assert APP_SECRET not in result.output


def test_json_output_for_machines(make_app):
    result = doctor(make_app(), "--json")
    document = json.loads(result.output)
    assert result.exit_code == 0 and document["ok"] is True
    assert {c["name"] for c in document["checks"]} >= {"reachable", "app credential", "clock"}


def test_a_wrong_secret_fails_and_says_so(make_app):
    result = doctor(make_app(META_APP_SECRET="not-the-secret-at-meta-0000"), "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    credential = checks["app credential"]
    assert credential["ok"] is False
    assert "Meta refuses the app's credential" in credential["detail"]
    assert "META_APP_SECRET" in credential["fix"]
    assert checks["reachable"]["ok"] is True
    assert "not-the-secret-at-meta-0000" not in result.output


def test_a_retired_version_fails_naming_the_version_meta_served(make_app):
    result = doctor(make_app(META_GRAPH_API_VERSION="v19.0"))
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "graph version" in line]
    assert line.startswith("FAIL") and "v19.0 is retired" in line and "v21.0" in line
    assert "META_GRAPH_API_VERSION" in result.output


def test_an_unreachable_host_fails_first_and_skips_what_needs_it(make_app):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = doctor(make_app(META_GRAPH_URL=dead), "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["reachable"]["ok"] is False and "unreachable" in checks["reachable"]["detail"]
    assert checks["app credential"]["detail"].startswith("not checked")
    assert checks["redirect uri"]["ok"] is True  # the configuration checks still ran


@pytest.mark.parametrize(("overrides", "name", "words"), [
    ({"META_REDIRECT_URI": "http://localhost/somewhere/else"}, "redirect uri", "not the callback"),
    ({"META_SCOPES": ["ads_management", "ads_mangement"]}, "scopes", "ads_mangement"),
    ({"META_LOGIN_CONFIG_ID": "my-config"}, "login config", "does not look like"),
])
def test_configuration_mistakes_are_named(make_app, overrides, name, words):
    result = doctor(make_app(**overrides), "--json")
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert result.exit_code == 1 and checks[name]["ok"] is False and words in checks[name]["detail"]
    assert checks[name]["fix"]


def test_production_needs_an_https_redirect_uri():
    from crm_meta.meta.doctor import _redirect_uri

    check = _redirect_uri({"APP_ENV": "production",
                           "META_REDIRECT_URI": "http://crm.example/crm/auth/meta/callback"})
    assert not check.ok and "https" in check.fix


def test_it_passes_on_make_runs_in_app_sandbox(tmp_path):
    # `make run`'s configuration (development, in-app sandbox at /sandbox/meta, its default
    # app and redirect URI), served on a free port instead of 8000.
    port = free_port()
    base = f"http://127.0.0.1:{port}/sandbox/meta"
    app = create_app(DevelopmentConfig({"DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
                                        "META_GRAPH_URL": base, "META_DIALOG_URL": base}))
    with app.app_context():
        db.create_all()
    server = serve_in_thread(app, port=port)
    try:
        result = doctor(app)
    finally:
        server.shutdown()
        with app.app_context():
            db.engine.dispose()
    assert result.exit_code == 0, result.output


def test_the_marketing_calendar_is_checked_too(make_app):
    """v24.0 is served for Graph until 2028-02-18 but the Marketing API retired it on 2026-11-10."""
    result = doctor(make_app(META_GRAPH_API_VERSION="v24.0"), "--json")
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["graph version"]["ok"] is True
    marketing = checks["marketing version"]
    assert marketing["ok"] is False and "2026-11-10" in marketing["detail"]
    assert "v26.0" in marketing["fix"] and result.exit_code == 1
