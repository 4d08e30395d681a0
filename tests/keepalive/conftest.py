"""Keep-alive fixtures: connections minted straight in the sandbox, call counting, a webhook sink."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crm_meta import jobs
from crm_meta.database import db
from crm_meta.meta import sweep as sweeping
from crm_meta.meta.store import TokenStore
from crm_meta.models import AuditEvent, MetaConnection, Tenant, User
from crm_meta.runtime import of

DEBUG_TOKEN = "/debug_token"
EXCHANGE = "/oauth/access_token"


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
        with self.app.app_context():
            query = db.select(AuditEvent).order_by(AuditEvent.id)
            if action:
                query = query.filter_by(action=action)
            events = list(db.session.scalars(query))
            db.session.expunge_all()
            return events


def _moment(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


@pytest.fixture
def connections(pg_app, sandbox):
    return Connections(pg_app, sandbox)


@pytest.fixture
def sqlite_connections(app, sandbox):
    return Connections(app, sandbox)


def debug_calls(sandbox) -> Counter:
    """debug_token calls per token id, from the sandbox's call log."""
    calls = sandbox.get("calls")["calls"]
    return Counter(c["token_id"] for c in calls if c["path"].endswith(DEBUG_TOKEN))


def sweep(app, **options):
    return sweeping.run_sweep(app, of(app), **options)


@pytest.fixture(autouse=True)
def _no_scheduler_left():
    yield
    jobs.shutdown()


# -- a webhook receiver ------------------------------------------------------------------------
class WebhookSink:
    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []  # answers to give, in order; then `status`
        self.status = 200
        self.hits = 0  # every POST, answered or refused
        self._hits = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._hits:
                    sink.hits += 1
                    status = sink.statuses.pop(0) if sink.statuses else sink.status
                if status < 300:
                    sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/meta"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def delivery_ids(self) -> list[str]:
        return [headers["x-crm-meta-delivery"] for headers, _ in self.received]


@pytest.fixture
def webhook_sink():
    sink = WebhookSink()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()
