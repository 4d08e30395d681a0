"""Test helpers shared by fixtures and tests: constants, sandbox driver, auth and flow helpers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from config import TestingConfig
from crm_meta.auth.principal import mint_jwt

APP_ID = "100000000000777"
APP_SECRET = "test-app-secret-0123456789abcdef"
REDIRECT_URI = "http://localhost/crm/auth/meta/callback"
PASSWORD = "correct horse battery"
JWT_SECRET = "test-jwt-secret-with-enough-length-0123"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
    from crm_meta.database import db
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


ROOT = Path(__file__).resolve().parent.parent


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
