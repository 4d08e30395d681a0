"""Shared fixtures: app/client/runner (pallets style), a live Meta sandbox, tenants, auth helpers,
and the real PostgreSQL and Redis (skipped with a reason when absent, mandatory under CI)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import TestingConfig
from crm_meta import create_app
from crm_meta.auth.principal import mint_jwt
from crm_meta.extensions import db
from crm_meta.models import Tenant, User

APP_ID = "100000000000777"
APP_SECRET = "test-app-secret-0123456789abcdef"
REDIRECT_URI = "http://localhost/crm/auth/meta/callback"
PASSWORD = "correct horse battery"
JWT_SECRET = "test-jwt-secret-with-enough-length-0123"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# -- real services: skip with a visible reason, or fail when CI says they are required -------
def _service_or_skip(name: str, flag: str, probe) -> None:
    problem = probe()
    if problem is None:
        return
    if os.environ.get(flag):
        pytest.fail(f"{name} is required ({flag}=1) but unreachable: {problem}")
    pytest.skip(f"{name} unreachable ({problem}); set {flag}=1 to make this a failure")


def _probe_postgres() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "not here"
        return type(exc).__name__
    return None


def _probe_redis() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return type(exc).__name__
    return None


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    _service_or_skip("PostgreSQL", "REQUIRE_POSTGRES", _probe_postgres)
    name = f"crm_meta_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url():
    _service_or_skip("Redis", "REQUIRE_REDIS", _probe_redis)
    return REDIS_URL


# -- the Meta sandbox on a live port ---------------------------------------------------------
@pytest.fixture(scope="session")
def sandbox_server():
    from crm_meta.sandbox import create_sandbox_app, serve_in_thread

    server = serve_in_thread(create_sandbox_app(APP_ID, APP_SECRET, REDIRECT_URI))
    yield server
    server.shutdown()


@dataclass
class SandboxControl:
    """Drives the live sandbox like a test user and a test operator would."""

    url: str

    def post(self, path: str, **payload):
        response = requests.post(f"{self.url}/_sandbox/{path}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def get(self, path: str):
        response = requests.get(f"{self.url}/_sandbox/{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def fault(self, path: str, **fields):
        return self.post("faults", path=path, **fields)

    def advance(self, seconds: float):
        return self.post("clock", advance_seconds=seconds)

    def calls(self, path_fragment: str = "") -> list[dict]:
        data = self.get("calls")
        calls = data.get("calls", data) if isinstance(data, dict) else data
        return [c for c in calls if path_fragment in c["path"]]

    def consent(self, auth_url: str, *, decision="approve", granted=None, user_id=None) -> str:
        """Answer the consent page; returns the redirect Location Meta would send."""
        query = parse_qs(urlsplit(auth_url).query)
        if granted is None:
            scopes = (query.get("scope") or [""])[0]
            granted = [s for s in scopes.replace(" ", ",").split(",") if s]
        form = {"decision": decision, "granted": granted}
        if user_id:
            form["user_id"] = user_id
        response = requests.post(auth_url, data=form, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), response.text[:500]
        return response.headers["Location"]


@pytest.fixture
def sandbox(sandbox_server):
    control = SandboxControl(sandbox_server.url)
    control.post("reset")
    return control


# -- the app ---------------------------------------------------------------------------------
def testing_config(sandbox_url: str, database_url: str, **overrides) -> TestingConfig:
    settings = dict(
        SQLALCHEMY_DATABASE_URI=database_url,
        META_APP_ID=APP_ID,
        META_APP_SECRET=APP_SECRET,
        META_REDIRECT_URI=REDIRECT_URI,
        META_MODE="sandbox",
        META_DIALOG_URL=sandbox_url,
        META_GRAPH_URL=sandbox_url,
        JWT_SECRET_KEY=JWT_SECRET,
        ENCRYPTION_KEY="test-encryption-key-current",
        SECRET_KEY="test-secret-key",
        RATELIMIT_ENABLED=False,
        META_HTTP_RETRIES=2,
    )
    settings.update(overrides)
    return TestingConfig(**settings)


@pytest.fixture
def make_app(tmp_path, sandbox_server):
    """Build an app on a fresh SQLite file (or `database_url=`), schema created, sandbox wired."""
    apps = []

    def factory(database_url: str | None = None, **overrides):
        url = database_url or f"sqlite:///{tmp_path / f'app{len(apps)}.db'}"
        app = create_app(testing_config(sandbox_server.url, url, **overrides))
        # Never sleep between Graph retries in tests.
        app.extensions["crm_meta"].graph.sleep = lambda seconds: None
        with app.app_context():
            db.drop_all()
            db.create_all()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def pg_app(make_app, postgres_url):
    return make_app(database_url=postgres_url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- tenants, users and callers --------------------------------------------------------------
@dataclass
class TenantUsers:
    tenant_id: int
    slug: str
    admin_email: str
    member_email: str


@pytest.fixture
def make_tenant(app):
    def factory(slug: str = "acme", app_=None) -> TenantUsers:
        target = app_ or app
        with target.app_context():
            tenant = Tenant(name=slug.title(), slug=slug)
            db.session.add(tenant)
            db.session.flush()
            for role in ("admin", "member"):
                user = User(email=f"{role}@{slug}.test", tenant_id=tenant.id, role=role)
                user.set_password(PASSWORD)
                db.session.add(user)
            db.session.commit()
            return TenantUsers(tenant.id, slug, f"admin@{slug}.test", f"member@{slug}.test")

    return factory


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("acme")


class AuthActions:
    """Log a browser-like test client in and out (flaskr's helper)."""

    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = PASSWORD):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def admin_client(client, auth, tenant):
    auth.login(tenant.admin_email)
    return client


def bearer(tenant_id: int, role: str = "admin", sub: str = "crm-user-1", **extra) -> dict:
    token = mint_jwt(JWT_SECRET, tenant_id=tenant_id, sub=sub, role=role)
    return {"Authorization": f"Bearer {token}", **extra}


class MetaFlow:
    """Runs the whole connect flow: our /url, the sandbox's consent, our callback."""

    def __init__(self, client, sandbox: SandboxControl):
        self.client = client
        self.sandbox = sandbox

    def start(self, **query) -> dict:
        response = self.client.get("/crm/auth/meta/url", query_string=query)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]

    def callback(self, location: str, accept: str = "application/json"):
        parts = urlsplit(location)
        return self.client.get(f"{parts.path}?{parts.query}", headers={"Accept": accept})

    def connect(self, *, decision="approve", granted=None, user_id=None, accept="application/json",
                **query):
        data = self.start(**query)
        location = self.sandbox.consent(data["auth_url"], decision=decision, granted=granted,
                                        user_id=user_id)
        return self.callback(location, accept=accept)


@pytest.fixture
def meta_flow(admin_client, sandbox):
    return MetaFlow(admin_client, sandbox)
