"""A status read costs one database round trip: the caller's tenant and the connection's status
columns in one statement, no pre-ping, no BEGIN or ROLLBACK around it. Counted, never timed.

Two counts: SQLAlchemy's events (statements and transaction ends it issues), and what psycopg2
sends, seen through a connection class of its own (its implicit BEGIN, the pre-ping's
`SELECT 1` and a ROLLBACK that ends a real transaction are invisible to the events).
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event

from crm_meta.infra.database import db
from tests.helpers.sandbox import MetaFlow
from tests.helpers.settings import testing_config
from tests.helpers.users import AuthActions, add_tenant, bearer
from tests.tools.wire import counting_connection

pytestmark = pytest.mark.postgres
STATUS = "/crm/marketing/token-status"


@pytest.fixture
def counted(make_app, postgres_url, sandbox):
    """A PostgreSQL app whose driver notes what it sends, a tenant connected through the
    sandbox (a real discovery), and a count of one request at a time."""
    connection_class, sent = counting_connection()
    # One pooled connection, so every request here reuses the one the previous one returned.
    options = dict(testing_config("", postgres_url).SQLALCHEMY_ENGINE_OPTIONS, pool_size=1,
                   max_overflow=0, connect_args={"connection_factory": connection_class})
    app = make_app(database_url=postgres_url, SQLALCHEMY_ENGINE_OPTIONS=options)
    tenant = add_tenant(app, "acme")
    client = app.test_client()
    AuthActions(client).login(tenant.admin_email)
    assert MetaFlow(client, sandbox).connect().status_code == 200
    AuthActions(client).logout()
    events: Counter = Counter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", lambda *a: events.update(["statements"]))
    event.listen(engine, "commit", lambda *a: events.update(["commits"]))
    event.listen(engine, "rollback", lambda *a: events.update(["rollbacks"]))

    def count(request) -> tuple[list[str], Counter, dict]:
        request()  # the pool's connection, caches: steady state from here
        sent.clear()
        events.clear()
        response = request()
        assert response.status_code == 200, response.get_json()
        return list(sent), Counter(events), response.get_json()["data"]

    return app, tenant, count


def test_a_bearer_status_read_is_one_statement_and_one_round_trip(counted):
    app, tenant, count = counted
    client = app.test_client()
    sent, events, data = count(lambda: client.get(STATUS, headers=bearer(tenant.tenant_id, "member")))
    assert sent == ["SELECT"]  # no pre-ping, no BEGIN, no ROLLBACK
    assert events["statements"] == 1 and events["commits"] == 0
    # Counts stored with the discovery stand in for the discovery itself.
    assert data["connected"] is True and data["business_managers"] >= 1 and data["ad_accounts"] >= 1


def test_the_crm_cookie_and_a_session_read_status_in_one_round_trip_too(counted):
    app, tenant, count = counted
    cookie = app.test_client()
    cookie.set_cookie("access_token", bearer(tenant.tenant_id)["Authorization"].split()[1])
    assert count(lambda: cookie.get(STATUS))[0] == ["SELECT"]

    browser = app.test_client()
    AuthActions(browser).login(tenant.member_email)
    sent, events, data = count(lambda: browser.get(STATUS))
    assert sent == ["SELECT"]  # the user, its tenant and the status together
    assert events["statements"] == 1 and data["connected"] is True


def test_the_status_read_never_loads_the_token_or_the_discovery(counted):
    app, tenant, count = counted
    client = app.test_client()
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def note(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    count(lambda: client.get(STATUS, headers=bearer(tenant.tenant_id)))
    event.remove(engine, "before_cursor_execute", note)
    read = statements[-1]
    for column in ("access_token", "business_managers", "personal_ad_accounts", "pages"):
        assert f"meta_tokens.{column}" not in read


def test_writes_still_run_in_a_transaction_after_a_read(counted):
    """The read's autocommit never leaks: the next request on the pooled connection has BEGIN."""
    app, tenant, count = counted
    client = app.test_client()
    assert count(lambda: client.get(STATUS, headers=bearer(tenant.tenant_id)))[0] == ["SELECT"]
    with app.app_context(), db.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False
    sent, _, _ = count(lambda: client.get("/crm/auth/meta/test-connection",
                                          headers=bearer(tenant.tenant_id)))
    assert sent[0] == "BEGIN" and "COMMIT" in sent
