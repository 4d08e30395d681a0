"""Safe without APP_ENV: no secret in the code, generated ones in instance/, a sandbox control API
for this machine only (or a token), `make run` on loopback, and never the testing config served."""

from __future__ import annotations

import os
import runpy
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from config import ConfigError, DevelopmentConfig, ProductionConfig
from crm_meta.app import create_app
from crm_meta.auth.principal import mint_jwt
from crm_meta.infra.database import db
from crm_meta.runtime import of
from tests.helpers.settings import GOOD_PRODUCTION, testing_config
from tests.helpers.users import add_tenant

ROOT = Path(__file__).resolve().parents[2]
# What config.py used to fall back to: public, so a token signed with it must never be accepted.
OLD_PUBLIC_JWT_SECRET = "dev-insecure-jwt-secret-for-local-use-only"
SECRETS_FILE = "local-secrets.json"
GENERATED = ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEY", "META_APP_SECRET")
REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def development_app(instance: Path, **overrides):
    """An app as `make run` builds it (development, no secrets in the environment)."""
    config = DevelopmentConfig({}, INSTANCE_PATH=str(instance),
                               SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'app.db'}", **overrides)
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


# -- secrets ---------------------------------------------------------------------------------------
def test_the_code_holds_no_secret():
    config = DevelopmentConfig({})
    assert [getattr(config, name) for name in GENERATED] == ["", "", "", ""]
    assert OLD_PUBLIC_JWT_SECRET not in (ROOT / "config.py").read_text()


def test_development_generates_its_secrets_once_into_instance(tmp_path):
    first = development_app(tmp_path / "instance")
    secrets_file = tmp_path / "instance" / SECRETS_FILE
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    values = {name: first.config[name] for name in GENERATED}
    assert all(len(value) >= 32 for value in values.values())
    assert of(first).sandbox.app_secret == values["META_APP_SECRET"]

    again = development_app(tmp_path / "instance")  # a restart, or a `flask ...` command
    assert {name: again.config[name] for name in GENERATED} == values
    elsewhere = development_app(tmp_path / "other")  # another install: other secrets
    assert all(elsewhere.config[name] != values[name] for name in GENERATED)


def test_a_token_signed_with_the_old_public_secret_is_refused(tmp_path):
    app = development_app(tmp_path / "instance")
    tenant = add_tenant(app, "acme")
    client = app.test_client()
    forged = mint_jwt(OLD_PUBLIC_JWT_SECRET, tenant_id=tenant.tenant_id, sub="1", role="admin")
    response = client.get("/crm/marketing/token-status", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    genuine = mint_jwt(app.config["JWT_SECRET_KEY"], tenant_id=tenant.tenant_id, sub="1", role="admin")
    assert client.get("/crm/marketing/token-status",
                      headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_secrets_set_in_the_environment_win_and_are_not_written(tmp_path):
    app = development_app(tmp_path, SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40,
                          ENCRYPTION_KEY="e" * 40, META_APP_SECRET="a" * 32)
    assert app.config["JWT_SECRET_KEY"] == "j" * 40
    assert not (tmp_path / SECRETS_FILE).exists()


def test_processes_starting_together_share_one_set_of_secrets(tmp_path):
    from crm_meta.infra import local_secrets

    results, names = [], ["SECRET_KEY", "ENCRYPTION_KEY"]
    threads = [threading.Thread(target=lambda: results.append(local_secrets.load_or_create(tmp_path, names)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(result == results[0] for result in results)


def test_production_still_refuses_to_start_without_real_secrets_and_writes_none(tmp_path):
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != "ENCRYPTION_KEY"}
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        create_app(ProductionConfig(env, INSTANCE_PATH=str(tmp_path)))
    assert not (tmp_path / SECRETS_FILE).exists()


# -- the sandbox's control API ---------------------------------------------------------------------
CONTROL = "/sandbox/meta/_sandbox"


def test_a_remote_client_cannot_use_the_control_api(make_app):
    """The review's chain: an anonymous signed_request, then deauthorize; and a clock moved 100 days."""
    app = make_app()
    client = app.test_client()
    signed = client.post(f"{CONTROL}/signed-request", json={"user_id": "1"}, environ_overrides=REMOTE)
    assert signed.status_code == 403 and "signed_request" not in signed.get_json()
    moved = client.post(f"{CONTROL}/clock", json={"advance_seconds": 100 * 86400},
                        environ_overrides=REMOTE)
    assert moved.status_code == 403
    assert of(app).sandbox.clock()["offset_seconds"] == 0
    for method, path in [("get", "calls"), ("get", "users"), ("post", "reset"), ("post", "tokens"),
                         ("get", "config"), ("post", "faults"), ("post", "users/1/invalidate")]:
        response = getattr(client, method)(f"{CONTROL}/{path}", json={}, environ_overrides=REMOTE)
        assert response.status_code == 403, path


def test_loopback_clients_keep_the_control_api(make_app):
    client = make_app().test_client()
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        response = client.post(f"{CONTROL}/signed-request", json={"user_id": "1"},
                               environ_overrides={"REMOTE_ADDR": address})
        assert response.status_code == 200 and response.get_json()["signed_request"], address


def test_the_dialog_graph_and_stylesheet_stay_public(make_app):
    client = make_app().test_client()
    assert client.get("/sandbox/meta/", environ_overrides=REMOTE).status_code == 200
    assert client.get(f"{CONTROL}/sandbox.css", environ_overrides=REMOTE).status_code == 200


def test_behind_a_trusted_proxy_only_the_sockets_own_peer_counts(make_app):
    """With TRUSTED_PROXIES set, a forwarded address is what a client wrote: a remote client
    claiming loopback, or anyone relayed by the proxy, needs the control token; only a caller on
    this host talking to the app itself (no forwarding header) keeps the control API."""
    client = make_app(TRUSTED_PROXIES=1).test_client()
    for socket_peer, forwarded in (("203.0.113.7", "127.0.0.1"), ("127.0.0.1", "203.0.113.7"),
                                   ("127.0.0.1", "127.0.0.1")):
        response = client.get(f"{CONTROL}/clock", environ_overrides={"REMOTE_ADDR": socket_peer},
                              headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 403, (socket_peer, forwarded)
    direct = client.get(f"{CONTROL}/clock", environ_overrides={"REMOTE_ADDR": "127.0.0.1"})
    assert direct.status_code == 200


def test_a_local_proxy_nobody_told_us_about_is_not_loopback(make_app):
    client = make_app().test_client()  # TRUSTED_PROXIES=0, yet a proxy on this host relays
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"):
        response = client.get(f"{CONTROL}/clock", headers={header: "203.0.113.7"})
        assert response.status_code == 403, header


def test_with_a_control_token_every_caller_needs_it(make_app):
    client = make_app(SANDBOX_CONTROL_TOKEN="control-token-0123456789").test_client()
    good = {"X-Sandbox-Control-Token": "control-token-0123456789"}
    assert client.get(f"{CONTROL}/clock", headers=good, environ_overrides=REMOTE).status_code == 200
    assert client.get(f"{CONTROL}/clock", environ_overrides=REMOTE).status_code == 403
    assert client.get(f"{CONTROL}/clock").status_code == 403  # loopback too
    for wrong in ("control-token-0123456788", "", "contrôle"):
        response = client.get(f"{CONTROL}/clock", headers={"X-Sandbox-Control-Token": wrong})
        assert response.status_code == 403, wrong


def test_never_in_production(make_app):
    app = make_app(APP_ENV="production")  # as if a sandbox had been wired there anyway
    response = app.test_client().post(f"{CONTROL}/signed-request", json={"user_id": "1"})
    assert response.status_code == 404
    result = app.test_cli_runner().invoke(args=["meta", "sandbox"])
    assert result.exit_code != 0 and "APP_ENV=production" in result.output


@pytest.fixture
def live_app_with_token(tmp_path):
    """The app with its in-app sandbox on a live port, a control token set: its clock reads
    `/_sandbox/clock` over HTTP from itself, as in a demo behind API_BASE_URL."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    base = f"http://127.0.0.1:{server.port}"
    app = create_app(testing_config(f"{base}/sandbox/meta", f"sqlite:///{tmp_path / 'live.db'}",
                                    API_BASE_URL=base, SANDBOX_CONTROL_TOKEN="live-control-token-42"))
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, base
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_the_apps_own_clock_reads_pass_with_the_token(live_app_with_token):
    from crm_meta.runtime import runtime

    app, base = live_app_with_token
    url = f"{base}/sandbox/meta/_sandbox/clock"
    assert requests.post(url, json={"advance_seconds": 86400}, timeout=10).status_code == 403
    moved = requests.post(url, json={"advance_seconds": 86400}, timeout=10,
                          headers={"X-Sandbox-Control-Token": "live-control-token-42"})
    assert moved.status_code == 200
    with app.app_context():
        assert runtime().clock.offset() == 86400


# -- serving: loopback by default, never the testing config ----------------------------------------
def gunicorn_bind(env: dict) -> str:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"]
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_gunicorn_listens_on_loopback_unless_host_says_otherwise():
    assert gunicorn_bind({}) == "127.0.0.1:8000"
    everywhere = "0.0.0.0"  # noqa: S104  (what the image asks for)
    assert gunicorn_bind({"HOST": everywhere, "PORT": "9000"}) == f"{everywhere}:9000"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HOST=0.0.0.0" in dockerfile and "APP_ENV=production" in dockerfile  # the container


def test_make_run_binds_loopback_and_says_so():
    result = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "HOST": "", "PORT": ""}, check=False)
    assert result.returncode == 0, result.stderr
    assert 'host="${HOST:-127.0.0.1}"' in result.stdout
    assert "Only this machine can reach it" in result.stdout
    assert "APP_ENV=testing" not in result.stdout


def test_the_served_app_refuses_the_testing_config(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "testing", "SECRET_KEY": "s" * 40,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "APP_ENV=testing" in lines[0], result.stderr
