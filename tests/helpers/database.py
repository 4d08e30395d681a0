"""Rows as the database holds them, and the migrations' script directory."""

from __future__ import annotations

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import text

from crm_meta.infra.database import db
from crm_meta.models import AuditEvent, Tenant
from tests.helpers.settings import ROOT

MIGRATIONS = ROOT / "migrations"


def audit_events(app, action: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = db.select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.filter_by(action=action)
        events = db.session.scalars(query).all()
        db.session.expunge_all()
        return events


def raw_rows(app, table: str) -> list[dict]:
    """Every row of `table` as the database holds it, each value as text."""
    with app.app_context():
        result = db.session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608  (fixed names)
        return [{key: None if value is None else str(value) for key, value in row._mapping.items()}
                for row in result]


def tenants(app) -> list[tuple[str, str]]:
    """(name, slug) of every tenant, oldest first."""
    with app.app_context():
        return [(t.name, t.slug) for t in db.session.scalars(db.select(Tenant).order_by(Tenant.id))]


def script_directory() -> ScriptDirectory:
    config = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)
