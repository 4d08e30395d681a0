"""Acting as the CRM's people: tenants with an admin and a member, logging in, a CRM user's JWT,
and the browser-like test client."""

from __future__ import annotations

from dataclasses import dataclass

from flask.testing import FlaskClient

from crm_meta.auth.principal import mint_jwt
from crm_meta.infra.database import db
from crm_meta.models import Tenant, User
from tests.helpers.settings import JWT_SECRET

PASSWORD = "correct horse battery"


@dataclass
class TenantUsers:
    tenant_id: int
    slug: str
    admin_email: str
    member_email: str


def add_tenant(app, slug: str) -> TenantUsers:
    """A tenant with an admin and a member (password PASSWORD) in `app`'s database."""
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
    """Headers with a CRM user's JWT (and any `extra` headers)."""
    token = mint_jwt(JWT_SECRET, tenant_id=tenant_id, sub=sub, role=role)
    return {"Authorization": f"Bearer {token}", **extra}


class BrowserClient(FlaskClient):
    """A test client that, like a browser on the app's own pages, sends `Sec-Fetch-Site:
    same-origin` (state-changing GETs refuse cookie callers without it); a test of a cross-site
    call sends its own value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_SEC_FETCH_SITE", "same-origin")
