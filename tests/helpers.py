"""Helpers the tests share: constants, and what the tests of more than one area call.

Fixtures, and helpers the tests of one area share, live in that area's conftest.py (this folder's
when several areas use them; the deployment tests' PromQL helpers in tests/deploy/support.py); a
helper of one test module stays in that module. No test module imports another, or a conftest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import text

from config import TestingConfig
from crm_meta.auth.principal import mint_jwt
from crm_meta.infra.database import db
from crm_meta.meta.keepalive import sweep as sweeping
from crm_meta.meta.store import TokenStore
from crm_meta.models import AuditEvent, MetaConnection, Tenant, User
from crm_meta.runtime import of

ROOT = Path(__file__).resolve().parent.parent

APP_ID = "100000000000777"
APP_SECRET = "test-app-secret-0123456789abcdef"
REDIRECT_URI = "http://localhost/crm/auth/meta/callback"
PASSWORD = "correct horse battery"
JWT_SECRET = "test-jwt-secret-with-enough-length-0123"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The sandbox's seeded data: an active ad account of the first business of the first test user.
ACCOUNT = "act_301000001000001"
BUSINESS = "2010000000000001"
# Graph paths, as the sandbox's call log names them (after the version).
DEBUG_TOKEN = "/debug_token"
EXCHANGE = "/oauth/access_token"

# A production environment that passes validation; tests take one thing away at a time.
GOOD_PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "JWT_SECRET_KEY": "j" * 40,
    "ENCRYPTION_KEY": "ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWU=",  # 32 bytes, urlsafe base64
    "META_APP_ID": "123456789",
    "META_APP_SECRET": "a" * 32,
    "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback",
}

# `flask crypto rotate`: a token stored under key A, read back under key B.
KEY_A = "rotation-key-A-0123456789"
KEY_B = "rotation-key-B-0123456789"
PLAINTEXT = "EAAplaintext-token-for-rotation-0123456789"


@dataclass
class SandboxControl:
    """Drives the live sandbox like a test user and a test operator would."""

    url: str

    def post(self, endpoint: str, **payload):
        response = requests.post(f"{self.url}/_sandbox/{endpoint}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def get(self, endpoint: str):
        response = requests.get(f"{self.url}/_sandbox/{endpoint}", timeout=10)
        response.raise_for_status()
        return response.json()

    def fault(self, path: str, **fields):
        return self.post("faults", path=path, **fields)

    def advance(self, seconds: float):
        return self.post("clock", advance_seconds=seconds)

    def calls(self, path_fragment: str = "") -> list[dict]:
        data = self.get("calls")
        calls = data.get("calls", data) if isinstance(data, dict) else data
        return [c for c in calls if path_fragment in c["path"]]

    def consent(self, auth_url: str, *, decision="approve", granted=None, user_id=None) -> str:
        """Answer the consent page; returns the redirect Location Meta would send."""
        query = parse_qs(urlsplit(auth_url).query)
        if granted is None:
            scopes = (query.get("scope") or [""])[0]
            granted = [s for s in scopes.replace(" ", ",").split(",") if s]
        form = {"decision": decision, "granted": granted}
        if user_id:
            form["user_id"] = user_id
        response = requests.post(auth_url, data=form, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), response.text[:500]
        return response.headers["Location"]


class BrowserClient(FlaskClient):
    """A test client that, like a browser on the app's own pages, sends `Sec-Fetch-Site:
    same-origin` (state-changing GETs refuse cookie callers without it); a test of a cross-site
    call sends its own value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_SEC_FETCH_SITE", "same-origin")


def testing_config(sandbox_url: str, database_url: str, **overrides) -> TestingConfig:
    settings = dict(
        SQLALCHEMY_DATABASE_URI=database_url,
        META_APP_ID=APP_ID,
        META_APP_SECRET=APP_SECRET,
        META_REDIRECT_URI=REDIRECT_URI,
        META_MODE="sandbox",
        META_DIALOG_URL=sandbox_url,
        META_GRAPH_URL=sandbox_url,
        JWT_SECRET_KEY=JWT_SECRET,
        ENCRYPTION_KEY="test-encryption-key-current",
        SECRET_KEY="test-secret-key",
        RATELIMIT_ENABLED=False,
        META_HTTP_RETRIES=2,
    )
    settings.update(overrides)
    return TestingConfig(**settings)


testing_config.__test__ = False  # a helper, not a test, wherever it is imported


@dataclass
class TenantUsers:
    tenant_id: int
    slug: str
    admin_email: str
    member_email: str


def add_tenant(app, slug: str) -> TenantUsers:
    """A tenant with an admin and a member (password PASSWORD) in `app`'s database."""
    from crm_meta.infra.database import db
    from crm_meta.models import Tenant, User

    with app.app_context():
        tenant = Tenant(name=slug.title(), slug=slug)
        db.session.add(tenant)
        db.session.flush()
        for role in ("admin", "member"):
            user = User(email=f"{role}@{slug}.test", tenant_id=tenant.id, role=role)
            user.set_password(PASSWORD)
            db.session.add(user)
        db.session.commit()
        return TenantUsers(tenant.id, slug, f"admin@{slug}.test", f"member@{slug}.test")


class AuthActions:
    """Log a browser-like test client in and out (flaskr's helper)."""

    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = PASSWORD):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


def bearer(tenant_id: int, role: str = "admin", sub: str = "crm-user-1", **extra) -> dict:
    token = mint_jwt(JWT_SECRET, tenant_id=tenant_id, sub=sub, role=role)
    return {"Authorization": f"Bearer {token}", **extra}


class MetaFlow:
    """Runs the whole connect flow: our /url, the sandbox's consent, our callback."""

    def __init__(self, client, sandbox: SandboxControl):
        self.client = client
        self.sandbox = sandbox

    def start(self, **query) -> dict:
        response = self.client.get("/crm/auth/meta/url", query_string=query)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]

    def callback(self, location: str, accept: str = "application/json"):
        parts = urlsplit(location)
        return self.client.get(f"{parts.path}?{parts.query}", headers={"Accept": accept})

    def connect(self, *, decision="approve", granted=None, user_id=None, accept="application/json",
                **query):
        data = self.start(**query)
        location = self.sandbox.consent(data["auth_url"], decision=decision, granted=granted,
                                        user_id=user_id)
        return self.callback(location, accept=accept)


def compile_catalogues() -> None:
    """`pybabel compile`, in-process, when a .mo is missing or older than its .po."""
    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as target:
            write_mo(target, catalog)


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll until condition() is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


# -- responses and rows ----------------------------------------------------------------------
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    """The contract's error envelope, with that status (and that code when given)."""
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == "application/json", response.data[:500]
    body = response.get_json()
    assert set(body) == {"success", "detail", "error", "timestamp"}, body
    assert body["success"] is False
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["error"] == {"code": body["error"]["code"], "message": body["detail"]}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["error"]["code"]), body
    stamp = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def csrf_token_from(html: bytes | str) -> str:
    """The value of a rendered page's `csrf_token` hidden input."""
    if isinstance(html, bytes):
        html = html.decode()
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token input on the page"
    return match.group(1) or match.group(2)


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


# -- the command line ------------------------------------------------------------------------
def invoke(app, args: list[str], **kwargs):
    """Run a command through Flask's CLI test runner, as `flask --app wsgi ...` would."""
    return app.test_cli_runner().invoke(args=args, **kwargs)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def refused(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"a traceback, not a clear error: {result.exception!r}")
    for fragment in fragments:
        assert fragment.lower() in result.output.lower(), result.output
    return result.output


def tenants(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(t.name, t.slug) for t in db.session.scalars(db.select(Tenant).order_by(Tenant.id))]


# -- migrations ------------------------------------------------------------------------------
MIGRATIONS = ROOT / "migrations"


def script_directory() -> ScriptDirectory:
    config = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


# -- Meta's signed_request ---------------------------------------------------------------------
def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(payload: dict, secret: str) -> str:
    """A signed_request as Meta builds it: HMAC-SHA256 of the encoded payload, with `secret`."""
    encoded = encode(json.dumps(payload).encode())
    sig = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return encode(sig) + "." + encoded


# -- the keep-alive: connections minted straight in the sandbox, sweeps ----------------------
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
