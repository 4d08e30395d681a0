"""Database reads that cost one round trip: no transaction for read-only requests (and for
single statements that are their own transaction), and a request's first statement retried
once when its pooled connection turns out to be dead.

There is no pre-ping on checkout (a `SELECT 1` round trip per request): stale connections are
recycled by age (DATABASE_POOL_RECYCLE), and one that died meanwhile (a PostgreSQL restart, an
idle timeout in between) fails its first statement, which invalidates the pool; that statement
is then run again on a fresh connection. Retrying is only safe before anything else happened
in the transaction, hence "first statement".
"""

from __future__ import annotations

from flask import Flask, has_request_context, request
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crm_meta.infra import statuscache
from crm_meta.infra.database import autocommit, db, restore_on_checkin

READ_ONLY = "crm_meta.read_only"  # request.environ key: this request only reads the database


def read_only(first_transaction_only: bool = False) -> None:
    """Run this request's statements without a transaction (views that never write); with
    `first_transaction_only`, only until its first commit: reads (and single-statement writes)
    first, then real transactions for whatever follows (the Graph gateway: its reads, Meta's
    answer, then perhaps a fenced write)."""
    request.environ[READ_ONLY] = "first" if first_transaction_only else True


def _after_commit(session) -> None:
    if has_request_context() and request.environ.get(READ_ONLY) == "first":
        request.environ[READ_ONLY] = False


def first_read(statement, params: dict | None = None):
    """Execute the request's first statement; retried once on a fresh connection when the
    pooled one was dropped. Later statements are never retried (a transaction may hold work)."""
    first = not db.session().in_transaction()
    try:
        return db.session.execute(statement, params)
    except DBAPIError as exc:
        if not (first and exc.connection_invalidated):
            raise
        db.session.rollback()  # the dead connection leaves the session; the pool replaces it
    return db.session.execute(statement, params)


def end_reads() -> None:
    """End the request's read transaction now (before a refusal: nothing was written)."""
    db.session.rollback()


def _after_begin(session, transaction, connection) -> None:
    if has_request_context() and request.environ.get(READ_ONLY):
        autocommit(connection)


def _end_read_only(exc) -> None:
    # A session that outlives the request (an app context pushed around it, as tests do) would
    # keep the autocommit connection; ending its transaction sends nothing in autocommit. A
    # request that used no session (a status read from the cache) gets none made here: making
    # one takes a lock all the worker's threads share (SQLAlchemy's session counter).
    if request.environ.get(READ_ONLY) and db.session.registry.has() and db.session().in_transaction():
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is gone already; the pool replaces it


def init_app(app: Flask) -> None:
    """Install the switch on this app's engines and the session."""
    if not event.contains(db.session, "after_begin", _after_begin):
        event.listen(db.session, "after_begin", _after_begin)
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
    with app.app_context():
        for engine in db.engines.values():
            restore_on_checkin(engine)
            statuscache.announce_credential_writes(engine)
    app.teardown_request(_end_read_only)
