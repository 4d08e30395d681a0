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
    statement = module.insert(model).values(rows).on_conflict_do_nothing()
    return db.session.execute(statement).rowcount or 0
