"""The inbox's group commit on PostgreSQL: deliveries stored together by one INSERT in autocommit
(no BEGIN/COMMIT round trips), each committed before `store` returns, and the pooled connection
handed back with transactions on for whoever takes it next."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, event, text

from crm_meta.infra.database import db
from crm_meta.meta.webhooks.inbox import Writer
from crm_meta.models import WebhookInbox

pytestmark = pytest.mark.postgres


def test_each_delivery_is_committed_before_store_returns(pg_app, postgres_url):
    with pg_app.app_context():
        writer = Writer(db.engine)
        seen_elsewhere = create_engine(postgres_url)
        counts = []

        def deliver(n):
            body = b'{"object": "page", "entry": []}' + str(n).encode()
            writer.store(body, "/webhooks/meta", datetime.now(UTC))
            with seen_elsewhere.connect() as conn:  # another connection sees it at once
                counts.append(conn.execute(text("SELECT count(*) FROM webhook_inbox WHERE body = :b"),
                                           {"b": body}).scalar())

        threads = [threading.Thread(target=deliver, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counts == [1] * 20
        seen_elsewhere.dispose()

        # The writer's connection went back to the pool with transactions on: a rollback undoes.
        db.session.add(WebhookInbox(received_at=datetime.now(UTC), route="/x", body=b"{}", malformed=False,
                                    entries=0))
        db.session.flush()
        db.session.rollback()
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookInbox)) == 20


def test_the_bytes_and_the_moment_are_stored_exactly(pg_app):
    body = bytes(range(256)) + b"\x00 not JSON, not UTF-8 \xff"
    at = datetime(2026, 12, 6, 13, 0, 0, 123456, tzinfo=UTC)
    with pg_app.app_context():
        Writer(db.engine).store(body, "/webhooks/meta/" + "x" * 80, at)
        row = db.session.scalars(db.select(WebhookInbox)).one()
        assert (row.body, row.received_at, row.route) == (body, at, ("/webhooks/meta/" + "x" * 80)[:64])
        assert (row.malformed, row.entries, row.processed_at) == (False, 0, None)


def test_a_refused_write_fails_its_requests_and_drops_the_connection(pg_app, postgres_url):
    refusing = create_engine(postgres_url, connect_args={"options": "-c default_transaction_read_only=on"})
    connected = []
    event.listen(refusing, "connect", lambda dbapi_connection, record: connected.append(dbapi_connection))
    writer = Writer(refusing)
    with pytest.raises(Exception, match="read-only"):
        writer.store(b"{}", "/webhooks/meta", datetime.now(UTC))
    with refusing.connect():  # not handed, broken or not, to whoever comes next: a new one
        assert len(connected) == 2 and connected[0].closed
    writer.engine = create_engine(postgres_url)
    writer.store(b"{}", "/webhooks/meta", datetime.now(UTC))  # the writer goes on
    with pg_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookInbox)) == 1
    refusing.dispose()
    writer.engine.dispose()


def test_a_naive_moment_is_refused_before_anything_is_written(pg_app):
    with pg_app.app_context():
        with pytest.raises(ValueError, match="naive"):
            Writer(db.engine).store(b"{}", "/webhooks/meta", datetime(2026, 12, 6, 13, 0))
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookInbox)) == 0
