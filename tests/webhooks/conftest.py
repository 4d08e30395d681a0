"""Fixtures of Meta's webhooks: an app that receives them (in the test client or on a live
port), Meta's signature, a tenant whose connection owns the sandbox's first Page and WhatsApp
account, and the CRM's endpoint (a receiver on a live port)."""

from __future__ import annotations

import json

import pytest
import requests

from crm_meta.infra.database import db
from crm_meta.meta.store import TokenStore
from crm_meta.meta.webhooks import forward, signature
from crm_meta.models import MetaConnection, NotificationOutbox, Tenant
from crm_meta.runtime import of
from meta_sandbox import USER_WITH_BUSINESSES, serve_in_thread
from meta_sandbox.catalogue import BUSINESS_BASE, PAGE_BASE, PHONE_BASE, WABA_BASE
from tests.helpers.settings import APP_SECRET

VERIFY_TOKEN = "verify-0123456789-abcdefghij-KLMNOP"
PAGE_ID = str(PAGE_BASE + 1)  # the first test user's first Page
FORM_ID = "1250000000000001"  # its first lead form
WABA_ID, PHONE_ID = str(WABA_BASE + 1), str(PHONE_BASE + 1)
LEAD_SCOPES = ["ads_management", "business_management", "whatsapp_business_management", "pages_show_list",
               "pages_read_engagement", "pages_manage_ads", "leads_retrieval"]


def signed(body: bytes | dict, secret: str = APP_SECRET) -> tuple[bytes, dict]:
    """A body and Meta's headers for it (X-Hub-Signature-256 over these exact bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", signature.HEADER: signature.sign(secret, raw)}


def leadgen(leadgen_id="444000001", page_id=PAGE_ID, form_id=FORM_ID, time=1765000000) -> dict:
    value = {"leadgen_id": leadgen_id, "page_id": page_id, "form_id": form_id, "created_time": time}
    return {"object": "page", "entry": [{"id": page_id, "time": time,
                                         "changes": [{"field": "leadgen", "value": value}]}]}


def rows(app, model) -> list:
    with app.app_context():
        found = db.session.scalars(db.select(model)).all()
        for row in found:
            db.session.expunge(row)
        return found


def events(app) -> list[NotificationOutbox]:
    return [r for r in rows(app, NotificationOutbox) if r.event.startswith("meta.")]


@pytest.fixture
def hook_app(make_app):
    return make_app(META_VERIFY_TOKEN=VERIFY_TOKEN, WEBHOOK_WAKE=False)


@pytest.fixture
def hook_client(hook_app):
    return hook_app.test_client()


@pytest.fixture
def owner(sandbox):
    """A tenant connected as the sandbox's first test user, with lead-reading permissions;
    its stored discovery holds the first Page and the first WhatsApp Business account."""

    def connect(app, slug="leads-co"):
        minted = sandbox.post("tokens", user_id=USER_WITH_BUSINESSES, scopes=LEAD_SCOPES)
        with app.app_context():
            tenant = Tenant(name=slug.title(), slug=slug)
            db.session.add(tenant)
            db.session.flush()
            row = MetaConnection(tenant_id=tenant.id, status="connected", scopes=LEAD_SCOPES,
                                 meta_user_id=USER_WITH_BUSINESSES, warnings_sent={},
                                 pages=[{"id": PAGE_ID, "name": "Page"}],
                                 business_managers=[{"id": str(BUSINESS_BASE + 1), "name": "B",
                                                     "ad_accounts": [],
                                                     "whatsapp_business_accounts": [{"id": WABA_ID}]}])
            TokenStore(of(app).cipher).write(row, minted["access_token"])
            db.session.add(row)
            db.session.commit()
            return tenant.id

    return connect


@pytest.fixture
def crm(webhook_sink):
    """The CRM's endpoint for a tenant: the receiver, and the secret it verifies with."""

    class Endpoint:
        sink = webhook_sink
        secret = ""

        def attach(self, app, tenant_id):
            self.secret = forward.new_secret()
            with app.app_context():
                forward.set_endpoint(of(app).cipher, tenant_id, webhook_sink.url, self.secret)
                db.session.commit()
            return self

    return Endpoint()


@pytest.fixture
def live_hook_app(hook_app):
    """The app on a live port, so the sandbox can call it."""
    server = serve_in_thread(hook_app)
    yield hook_app, server.url
    server.shutdown()


def subscribe(sandbox, url: str) -> None:
    """The app-level subscription made straight in the sandbox (the doctor makes it too)."""
    response = requests.post(f"{sandbox.url}/v25.0/100000000000777/subscriptions", data={
        "object": "page", "callback_url": url, "fields": "leadgen,messages", "verify_token": VERIFY_TOKEN,
        "access_token": "100000000000777|" + APP_SECRET}, timeout=10)
    assert response.status_code == 200, response.text
    response = requests.post(f"{sandbox.url}/v25.0/100000000000777/subscriptions", data={
        "object": "whatsapp_business_account", "callback_url": url, "fields": "messages",
        "verify_token": VERIFY_TOKEN, "access_token": "100000000000777|" + APP_SECRET}, timeout=10)
    assert response.status_code == 200, response.text
    for asset, fields in ((PAGE_ID, "leadgen,messages"), (WABA_ID, "messages")):  # the assets' own
        requests.post(f"{sandbox.url}/_sandbox/subscriptions/{asset}", params={"fields": fields},
                      timeout=10).raise_for_status()

