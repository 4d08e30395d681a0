"""The SQLAlchemy handle: created unbound, initialised by the application factory."""

from collections.abc import Callable
from typing import Any, TypeVar

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import CursorResult, Result, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
T = TypeVar("T")


def engine_options(database_uri: str, options: dict) -> dict:
    """The engine options for this database: with psycopg2, an executemany (the ORM's flush of
    many rows, the sweep's batched write-back) goes out in pages of one round trip each."""
    if not database_uri.startswith(("postgresql://", "postgresql+psycopg2://")):
        return options
    return {"executemany_mode": "values_plus_batch", **options}


AUTOCOMMIT = "crm_meta.autocommit"  # connection info key: switched to autocommit by us


def autocommit(connection) -> None:
    """Run this connection's statements without BEGIN/COMMIT until it goes back to the pool."""
    # psycopg2 sends BEGIN before a transaction's first statement and COMMIT or ROLLBACK at its
    # end: round trips a read, or a single statement, does not need. Its `autocommit` attribute
    # is a client-side switch (no statement), unlike an isolation-level change, which sends a
    # SET when it is undone; the pool's checkin below switches it back.
    if connection.dialect.driver != "psycopg2":
        return  # SQLite serves one process; nothing to save there
    pooled_autocommit(connection.connection)


def pooled_autocommit(pooled) -> None:
    """The same for a pooled psycopg2 connection (`engine.raw_connection()`)."""
    pooled.dbapi_connection.autocommit = True
    pooled.info[AUTOCOMMIT] = True


def _checkin(dbapi_connection, record) -> None:
    """Every connection goes back to the pool with transactions on, whoever used it."""
    if record.info.pop(AUTOCOMMIT, False) and dbapi_connection is not None:
        dbapi_connection.autocommit = False


def restore_on_checkin(engine) -> None:
    """Install the checkin hook above on an engine (once)."""
    if not event.contains(engine, "checkin", _checkin):
        event.listen(engine, "checkin", _checkin)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (SQLAlchemy types `execute` as a plain Result)."""
    return result.rowcount if isinstance(result, CursorResult) else 0


def once_more_if_disconnected(work: Callable[[], T], *,
                              before_retry: Callable[[], object] | None = None) -> T:
    """Run `work()`; when its connection turns out to have died in the pool (a PostgreSQL
    restart, an idle timeout in between), run it once more on a fresh one, as a request's first
    statement is (crm_meta.dbreads). Only for work that is the first of its transaction."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    if before_retry is not None:
        before_retry()  # e.g. the session lets the dead connection go; the pool replaces it
    return work()


def answers() -> bool:
    """Whether the database answers a `SELECT 1` (readiness); a failed session is rolled back."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return False
    return True
