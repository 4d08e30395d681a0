"""The CRM's own frontend, on another origin, calling the API the way its axios client does:
`credentials: 'include'` (the CRM's HttpOnly `access_token` cookie), `X-Tenant-ID` and
`X-Admin-Token` on every call; Meta's callback sends the browser back to the CRM."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from crm_meta.app import create_app
from crm_meta.infra.database import db
from tests.helpers.settings import JWT_SECRET, testing_config
from tests.helpers.users import add_tenant

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "e2e-crm-admin-token-0123456789"

# A stand-in for CRM Ventas' marketing page: status, connect, disconnect through our API.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM Ventas (test double)</title></head>
<body><main>
<h1>Marketing</h1>
<p>Meta: <output id="status">loading</output></p>
<button id="connect">Connect Meta</button> <button id="disconnect">Disconnect Meta</button>
<p><output id="result"></output></p>
</main>
<script>
const API = __API__, HEADERS = {"X-Tenant-ID": __TENANT__, "X-Admin-Token": __ADMIN__};
async function call(method, path, body) {
  const init = {method, credentials: "include", headers: {...HEADERS}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  return [response.status, await response.json()];
}
const out = (id, text) => { document.getElementById(id).textContent = text; };
async function showStatus() {
  try {
    const [code, body] = await call("GET", "/crm/marketing/token-status");
    out("status", code === 200 ? body.data.status : "error " + body.error.code);
  } catch (error) {
    out("status", "blocked");  // CORS refused: the browser hides the answer from this origin
  }
}
document.getElementById("connect").onclick = async () => {
  const [code, body] = await call("GET", "/crm/auth/meta/url");
  if (code === 200) window.location.assign(body.data.auth_url);
  else out("result", "error " + body.error.code);
};
document.getElementById("disconnect").onclick = async () => {
  try {
    const [code, body] = await call("POST", "/crm/auth/meta/disconnect");
    out("result", code === 200 ? "disconnected" : "error " + body.error.code);
  } catch (error) {
    out("result", "blocked");
  }
  await showStatus();
};
showStatus();
</script></body></html>
"""


class Served:
    """A WSGI app on a live port of 127.0.0.1, in a thread."""

    def __init__(self, app=None):
        self.server = make_server("127.0.0.1", 0, app or (lambda environ, start: []), threaded=True)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, app=None):
        if app is not None:
            self.server.app = app
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def crm_page(api: str, tenant_id: int):
    html = (PAGE.replace("__API__", json.dumps(api)).replace("__TENANT__", json.dumps(str(tenant_id)))
            .replace("__ADMIN__", json.dumps(ADMIN_TOKEN))).encode()

    def page(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(html)))])
        return [html]

    return page


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The API (with its in-app sandbox), the CRM's page on a second origin, a foreign origin."""
    api, crm, foreign = Served(), Served(), Served()
    base = f"http://127.0.0.1:{api.port}"
    crm_origin = f"http://127.0.0.1:{crm.port}"  # same site as the API, another origin
    database = tmp_path_factory.mktemp("crm-origin") / "app.db"
    app = create_app(testing_config(
        f"{base}/sandbox/meta", f"sqlite:///{database}", API_BASE_URL=base,
        META_REDIRECT_URI=f"{base}/crm/auth/meta/callback", WTF_CSRF_ENABLED=True,
        CRM_ORIGINS=[crm_origin], CRM_ADMIN_TOKEN=ADMIN_TOKEN, FRONTEND_URL=crm_origin))
    with app.app_context():
        db.create_all()
    tenant = add_tenant(app, f"t{uuid.uuid4().hex[:10]}")
    api.start(app)
    crm.start(crm_page(base, tenant.tenant_id))
    foreign.start(crm_page(base, tenant.tenant_id))
    yield {"api": base, "crm": crm_origin, "foreign": f"http://localhost:{foreign.port}",
           "tenant": tenant}
    for served in (api, crm, foreign):
        served.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def crm_login_token(tenant_id: int) -> str:
    """CRM Ventas' login token: no sub, no iat."""
    return jwt.encode({"user_id": "42", "email": "ana@crm.test", "role": "ceo", "tenant_id": tenant_id,
                       "niche_type": "crm_sales", "exp": datetime.now(UTC) + timedelta(days=7)},
                      JWT_SECRET, algorithm="HS256")


@pytest.fixture
def context(browser, stack):
    """A browser where CRM Ventas' backend (on the API's host) has set its login cookie."""
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "access_token", "value": crm_login_token(stack["tenant"].tenant_id),
                          "url": stack["api"], "httpOnly": True, "sameSite": "Lax"}])
    yield context
    context.close()


def test_the_crm_page_connects_and_disconnects_through_the_api(context, stack, artifacts):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{stack['crm']}/crm/marketing")
    expect(page.locator("#status")).to_have_text("disconnected")
    page.get_by_role("button", name="Connect Meta", exact=True).click()
    page.wait_for_url(re.compile(r"/sandbox/meta/v[\d.]+/dialog/oauth\?"))
    page.locator('button[name="decision"][value="approve"]').click()
    # Meta's callback ends back on the CRM, with the outcome in the query.
    # (Meta's redirect carries a `#_=_` fragment, which browsers keep across our redirect.)
    page.wait_for_url(re.compile(re.escape(f"{stack['crm']}/crm/marketing?success=connected")
                                 + r"(#_=_)?$"))
    expect(page.locator("#status")).to_have_text("connected")
    folder = artifacts / "crm_origin"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "crm-page-connected.png"))
    page.get_by_role("button", name="Disconnect Meta", exact=True).click()
    expect(page.locator("#result")).to_have_text("disconnected")
    expect(page.locator("#status")).to_have_text("disconnected")
    assert not errors


def test_another_origin_can_neither_read_nor_write(context, stack):
    page = context.new_page()
    page.goto(f"{stack['foreign']}/crm/marketing")
    expect(page.locator("#status")).to_have_text("blocked")
    page.get_by_role("button", name="Disconnect Meta", exact=True).click()
    expect(page.locator("#result")).to_have_text("blocked")
