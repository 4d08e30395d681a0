"""Fixtures of every area: app/client/runner (pallets style), a live Meta sandbox, the app on a
live port, tenants, auth helpers, the CRM's services (keys, tenants connected through the real
flow, their stored connections), the real PostgreSQL and Redis (skipped with a reason when
absent, mandatory under CI), apps on a shared database, and a webhook receiver
(tests/tools/webhook_sink.py). An area's own fixtures are in its conftest."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import WSGIRequestHandler, make_server

from crm_meta.app import create_app
from crm_meta.infra.database import db
from crm_meta.internal import keys
from crm_meta.models import MetaConnection
from tests.helpers.sandbox import ACCOUNT, MetaFlow, SandboxControl
from tests.helpers.settings import (
    APP_ID,
    APP_SECRET,
    POSTGRES_URL,
    REDIRECT_URI,
    REDIS_URL,
    compile_catalogues,
    testing_config,
)
from tests.helpers.users import PASSWORD, AuthActions, BrowserClient, TenantUsers, add_tenant
from tests.tools.webhook_sink import WebhookSink


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


@pytest.fixture(scope="session", autouse=True)
def _catalogues():
    """Pages render the Spanish catalogue: compile it when `make` has not."""
    compile_catalogues()


# -- the OpenAPI document stays true -------------------------------------------------------
@pytest.fixture(autouse=True)
def _responses_follow_the_openapi_document(request, monkeypatch):
    """Every response a Flask test client receives is checked against crm_meta/api/openapi.yaml
    (tests/tools/openapi_check.py); `@pytest.mark.openapi_unchecked` opts a test out, with a reason."""
    if request.node.get_closest_marker("openapi_unchecked"):
        return
    from tests.tools import openapi_check

    original = FlaskClient.open

    def open_and_check(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        openapi_check.check(self.application, response)
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)


# -- the Meta sandbox on a live port ---------------------------------------------------------
@pytest.fixture(scope="session")
def sandbox_server():
    from meta_sandbox import create_sandbox_app, serve_in_thread

    server = serve_in_thread(create_sandbox_app(APP_ID, APP_SECRET, REDIRECT_URI))
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server):
    control = SandboxControl(sandbox_server.url)
    control.post("reset")
    return control


# -- the app ---------------------------------------------------------------------------------
@pytest.fixture
def make_app(tmp_path, sandbox_server):
    """Build an app on a fresh SQLite file (or `database_url=`), sandbox wired; `schema=False`
    leaves the database as it is (as a second process would find it)."""
    apps = []

    def factory(database_url: str | None = None, *, schema: bool = True, **overrides):
        url = database_url or f"sqlite:///{tmp_path / f'app{len(apps)}.db'}"
        app = create_app(testing_config(sandbox_server.url, url, **overrides))
        app.test_client_class = BrowserClient
        # Never sleep between Graph retries in tests.
        app.extensions["crm_meta"].graph.sleep = lambda seconds: None
        if schema:
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
def build_app(make_app):
    """Build an app on a given database without touching its schema (as a second process would)."""
    return lambda database_url, **overrides: make_app(database_url, schema=False, **overrides)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def keep_logging():
    """Alembic's env.py runs logging.fileConfig, which disables existing loggers; undo it."""
    manager = logging.root.manager
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name in saved:
            logger.disabled, level, handlers, logger.propagate = saved[name]
            logger.setLevel(level)
            logger.handlers[:] = handlers
        else:
            logger.disabled = False


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- the app on a live port, for clients nobody here wrote (Meta's SDK, httpx) ---------------
class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


@dataclass
class Live:
    url: str

    @property
    def graph(self) -> str:
        """What a Graph client gets instead of https://graph.facebook.com."""
        return f"{self.url}/graph"

    def proxy(self, tenant: str) -> str:
        """The services' Graph proxy for `tenant`, as a Graph client's base URL."""
        return f"{self.url}/internal/meta/connections/{tenant}/graph"


@pytest.fixture
def live(app):
    """The app on a live port of 127.0.0.1, API_BASE_URL pointing at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["API_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(url)
    server.shutdown()
    thread.join(timeout=10)


# -- tenants, users and callers --------------------------------------------------------------
@pytest.fixture
def make_tenant(app):
    def factory(slug: str = "acme", app_=None) -> TenantUsers:
        return add_tenant(app_ or app, slug)

    return factory


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("acme")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def admin_client(client, auth, tenant):
    auth.login(tenant.admin_email)
    return client


@pytest.fixture
def meta_flow(admin_client, sandbox):
    return MetaFlow(admin_client, sandbox)


# -- the CRM's services: keys, and tenants connected through the real flow (internal/, gateway/) --
@dataclass
class Service:
    """A CRM service holding a key (never a Meta token)."""

    name: str
    key: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def __repr__(self) -> str:  # keep the key out of assertion messages
        return f"Service({self.name})"


@pytest.fixture
def make_key(app):
    def factory(name="marketing", scopes=("credentials:read", "graph:proxy"), app_=None) -> Service:
        with (app_ or app).app_context():
            return Service(name, keys.create(name, list(scopes)).key)

    return factory


@pytest.fixture
def service(make_key):
    return make_key()


@pytest.fixture
def connect(app, sandbox):
    """A tenant connected through our /url, the sandbox's consent and our callback, with an
    ad account selected (`account=None` selects none)."""

    def factory(slug: str, *, user_id=None, account=ACCOUNT, app_=None) -> TenantUsers:
        the_app = app_ or app
        tenant = add_tenant(the_app, slug)
        client = the_app.test_client()
        client.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
        response = MetaFlow(client, sandbox).connect(user_id=user_id)
        assert response.status_code == 200, response.get_json()
        if account:
            selected = client.post("/crm/marketing/connect", json={"account_id": account})
            assert selected.status_code == 200, selected.get_json()
        return tenant

    return factory


@pytest.fixture
def stored_token():
    """The tenant's token as the store reads it: `stored_token(app, tenant_id)`."""

    def read(app, tenant_id: int) -> str:
        from crm_meta.runtime import runtime

        with app.app_context():
            store = runtime().store
            return store.read(store.for_tenant(tenant_id))

    return read


@pytest.fixture
def set_status():
    """Change columns of the tenant's stored connection: `set_status(app, tenant_id, **columns)`."""

    def change(app, tenant_id: int, **columns) -> None:
        with app.app_context():
            row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
            for name, value in columns.items():
                setattr(row, name, value)
            db.session.commit()

    return change


@pytest.fixture
def row_of():
    """A detached copy of the tenant's stored connection: `row_of(app, tenant_id)`."""

    def read(app, tenant_id: int) -> MetaConnection:
        with app.app_context():
            row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant_id))
            db.session.expunge(row)
            return row

    return read


# -- a webhook receiver (the keep-alive's and the outbox's notices) ----------------------------
@pytest.fixture
def webhook_sink():
    sink = WebhookSink()
    yield sink
    sink.close()
