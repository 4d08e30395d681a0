"""INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite: the loser of a race inserts nothing."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from crm_meta.infra.database import db


def insert_ignore(model, rows: list[dict]) -> int:
    """Insert the rows whose primary key is new; returns how many were inserted."""
    if not rows:
        return 0
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    # The table's statement with the rows as parameters: compiled once and cached (a VALUES list
    # in the statement is compiled anew for every call), sent as one multi-row INSERT all the same.
    statement = module.insert(model.__table__).on_conflict_do_nothing()
    return db.session.execute(statement, rows).rowcount or 0
