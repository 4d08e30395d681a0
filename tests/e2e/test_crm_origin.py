"""The CRM's own frontend, on another origin, calling the API the way its axios client does:
`credentials: 'include'` (the CRM's HttpOnly `access_token` cookie), `X-Tenant-ID` and
`X-Admin-Token` on every call; Meta's callback sends the browser back to the CRM."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

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


@pytest.fixture(scope="module")
def stack(crm_stack):
    """The API, the CRM's page on its origin, and the same page on a foreign origin."""
    values = {"API": crm_stack.api, "TENANT": str(crm_stack.tenant.tenant_id), "ADMIN": crm_stack.admin_token}
    crm_stack.serve_crm_page(PAGE, **values)
    return {"api": crm_stack.api, "crm": crm_stack.crm, "tenant": crm_stack.tenant,
            "foreign": crm_stack.serve_foreign_page(PAGE, **values), "login_token": crm_stack.login_token}


@pytest.fixture
def context(browser, stack):
    """A browser where CRM Ventas' backend (on the API's host) has set its login cookie."""
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "access_token", "value": stack["login_token"],
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
