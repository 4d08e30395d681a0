"""The keep-alive's tests: connections whose token the sandbox minted directly, and sweeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from crm_meta.infra.database import db
from crm_meta.meta.keepalive import sweep as sweeping
from crm_meta.meta.store import TokenStore
from crm_meta.models import AuditEvent, MetaConnection, Tenant, User
from crm_meta.runtime import of
from tests.helpers.database import audit_events


@dataclass
class Conn:
    tenant_id: int
    slug: str
    row_id: int
    token_id: str
    user_id: str
    token: str

    def __repr__(self) -> str:  # keep tokens out of assertion messages
        return f"Conn({self.slug}, row {self.row_id})"


class Connections:
    """Tenants with a stored connection whose token the sandbox minted directly."""

    def __init__(self, app, sandbox):
        self.app = app
        self.sandbox = sandbox
        self.count = 0

    def add(self, slug: str | None = None, *, user_id: str | None = None, **mint) -> Conn:
        self.count += 1
        slug = slug or f"tenant-{self.count}"
        user_id = user_id or f"7{self.count:06d}"  # a user of its own: invalidations stay local
        minted = self.sandbox.post("tokens", user_id=user_id, **mint)
        with self.app.app_context():
            tenant = Tenant(name=slug.title(), slug=slug)
            db.session.add(tenant)
            db.session.flush()
            db.session.add(User(email=f"admin@{slug}.test", tenant_id=tenant.id, role="admin",
                                password_hash="!"))
            row = MetaConnection(tenant_id=tenant.id, warnings_sent={}, status="connected",
                            token_type=minted.get("type", "USER"),
                            scopes=list(self.app.config["META_SCOPES"]),
                            expires_at=_moment(minted["expires_at"]), meta_user_id=user_id)
            TokenStore(self.app.extensions["crm_meta"].cipher).write(row, minted["access_token"])
            db.session.add(row)
            db.session.commit()
            return Conn(tenant.id, slug, row.id, minted["token_id"], user_id, minted["access_token"])

    def row(self, conn: Conn) -> MetaConnection:
        """A fresh, detached copy of the connection's row."""
        with self.app.app_context():
            row = db.session.get(MetaConnection, conn.row_id)
            db.session.expunge(row)
            return row

    def token(self, conn: Conn) -> str:
        with self.app.app_context():
            row = db.session.get(MetaConnection, conn.row_id)
            return TokenStore(self.app.extensions["crm_meta"].cipher).read(row)

    def audit(self, action: str | None = None) -> list[AuditEvent]:
        return audit_events(self.app, action)


def _moment(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def sweep(app, **options):
    return sweeping.run_sweep(app, of(app), sweeping.Scope(**options))
