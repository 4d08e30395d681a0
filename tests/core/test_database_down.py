"""PostgreSQL going away (a restart, a fail-over): 503 `database_unavailable` with Retry-After,
never a 500, and service again as soon as it is back.

The app reaches the real PostgreSQL through a TCP proxy the test cuts: open connections drop
and new ones are refused, as while the server restarts.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from crm_meta.infra.database import db
from tests.helpers.responses import assert_envelope
from tests.helpers.users import AuthActions, add_tenant, bearer
from tests.tools.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy(postgres_url):
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.cut()


@pytest.fixture
def proxied(make_app, postgres_url, proxy):
    """An app whose every database connection goes through the proxy, with one tenant."""
    url = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    app = make_app(database_url=url.render_as_string(hide_password=False))
    tenant = add_tenant(app, "acme")
    return app, tenant


def token_status(client, tenant):
    return client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id))


def test_a_database_restart_answers_503_with_retry_after_then_recovers(proxied, proxy):
    app, tenant = proxied
    client = app.test_client()
    assert token_status(client, tenant).status_code == 200  # a pooled connection exists now

    proxy.cut()
    response = token_status(client, tenant)
    assert_envelope(response, 503, "database_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["database"] is False
    assert client.get("/healthz").status_code == 200  # alive: no restart loop over a database

    proxy.restore()
    assert token_status(client, tenant).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_a_browser_gets_a_page_not_a_stack_trace(proxied, proxy):
    app, tenant = proxied
    client = app.test_client()
    AuthActions(client).login(tenant.admin_email)
    assert client.get("/crm/marketing", headers={"Accept": "text/html"}).status_code == 200

    proxy.cut()
    page = client.get("/crm/marketing", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"]
    text = page.get_data(as_text=True)
    assert "The database is not reachable" in text and "Traceback" not in text


def test_the_connection_dropping_mid_request_is_a_503(proxied, proxy):
    """The first statement of the request succeeds; the server goes away before the second
    (only a request's first statement is retried: later ones may follow work of its own)."""
    app, tenant = proxied
    client = app.test_client()
    statements = []

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
        if len(statements) == 2:
            proxy.cut()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before_execute)
    try:  # the caller's tenant, then the connection's row: two statements
        response = client.get("/crm/marketing/meta-accounts", headers=bearer(tenant.tenant_id))
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
    assert len(statements) >= 2
    assert_envelope(response, 503, "database_unavailable")
    proxy.restore()
    assert token_status(client, tenant).status_code == 200


@pytest.mark.parametrize("path", ["/crm/marketing/token-status", "/crm/auth/meta/test-connection"])
def test_a_dropped_pooled_connection_is_retried_once_transparently(proxied, proxy, path):
    """PostgreSQL restarted between two requests (no pre-ping finds out): the request's first
    statement fails on the dead pooled connection and runs again on a new one; no 503."""
    app, tenant = proxied
    client = app.test_client()
    assert token_status(client, tenant).status_code == 200  # a pooled connection exists now
    statements = []

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    proxy.cut()
    proxy.restore()  # the old connections are gone, new ones are accepted
    event.listen(engine, "before_cursor_execute", before_execute)
    try:
        response = client.get(path, headers=bearer(tenant.tenant_id))
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
    assert response.status_code == 200, response.get_json()
    assert statements[0] == statements[1]  # the caller's tenant, read twice: the retry
    assert token_status(client, tenant).status_code == 200
