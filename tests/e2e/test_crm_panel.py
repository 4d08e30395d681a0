"""CRM Ventas' MetaConnectionPanel, on the CRM's own origin, against crm-meta: it loads Meta's
JavaScript SDK (the sandbox's, swapped in for connect.facebook.net by a CDP Fetch pattern that
intercepts that one URL only, so the app's own CORS is what the page meets), logs in with
FB.login and CRM Ventas' scopes in a real popup, posts the code to /admin/meta/connect
cross-origin with CRM Ventas' login token, reads the status, chooses a Page, an Instagram
account and a phone number, and disconnects; every answer is what the panel reads."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from playwright.sync_api import expect

from tests.helpers.settings import APP_ID

pytestmark = pytest.mark.e2e
SDK_URL = "https://connect.facebook.net/en_US/sdk.js"

# A stand-in for MetaConnectionPanel.tsx: the same calls, headers, scopes and reads.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM Ventas panel (test double)</title></head>
<body><main>
<h1>Meta Channels</h1>
<ul id="badges"></ul>
<p>Token: <output id="token"></output></p>
<p><output id="error"></output> <output id="success"></output></p>
<button id="connect">Connect with Facebook</button>
<button id="disconnect">Disconnect</button>
<div id="assets"></div>
<button id="save">Activate</button>
</main>
<script>
const API = __API__, ADMIN = __ADMIN__, TENANT = __TENANT__, JWT = __JWT__, APP_ID = __APP_ID__;
const SCOPES = ["pages_show_list", "pages_manage_metadata", "pages_messaging", "instagram_basic",
  "instagram_manage_messages", "business_management", "whatsapp_business_management",
  "whatsapp_business_messaging"].join(",");
window.answers = [];
let status = null, selected = new Set();
async function api(method, path, body) {  // axios: withCredentials, its headers, JSON bodies
  const headers = {"X-Admin-Token": ADMIN, "X-Tenant-ID": TENANT || "default"};
  if (JWT) headers["Authorization"] = "Bearer " + JWT;
  const init = {method, credentials: "include", headers};
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(API + path, init);
  const data = await response.json();
  window.answers.push({method, path, status: response.status, data});
  if (response.status >= 400) {
    const e = new Error("HTTP " + response.status); e.response = {data}; throw e;
  }
  return {data};
}
const show = (id, text) => { document.getElementById(id).textContent = text || ""; };
async function fetchStatus() {
  try {
    const {data} = await api("GET", "/admin/meta/status");
    status = data.data;
    selected = new Set(status.bindings.filter((b) => b.active).map((b) => b.asset_id));
    render();
  } catch (err) { show("error", err.response?.data?.detail || "Error loading Meta connection status"); }
}
function render() {
  const connected = status?.connected ?? false;
  document.getElementById("badges").innerHTML = ["facebook", "instagram", "whatsapp"].map((ch) =>
    `<li id="badge-${ch}">${ch}: ` +
    `${status.channels[ch] ? "ACTIVE" : connected ? "NOT SELECTED" : "DISCONNECTED"}</li>`).join("");
  show("token", connected ? (status.token_valid ? "Token valid" : "Token expired or invalid") +
       (status.token_expires_at ? " until " + new Date(status.token_expires_at * 1000).toISOString() : "")
       : "");
  const assets = status?.assets || [];
  const groups = [
    ["Facebook Pages", assets.filter((a) => a.platform === "facebook" && a.asset_type === "page")],
    ["Instagram", assets.filter((a) => a.platform === "instagram")],
    ["WhatsApp", assets.filter((a) => a.platform === "whatsapp" && a.asset_type === "waba")
      .concat(assets.filter((a) => a.platform === "whatsapp" && a.asset_type === "phone_number"))],
  ];
  const box = document.getElementById("assets");
  box.innerHTML = "";
  for (const [title, list] of groups) {
    for (const a of list) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox"; input.dataset.assetId = a.asset_id; input.checked = selected.has(a.asset_id);
      input.onchange = () => { input.checked ? selected.add(a.asset_id) : selected.delete(a.asset_id); };
      const subtitle = a.asset_type === "phone_number" ? (a.metadata?.verified_name || a.asset_id) : "";
      const kind = a.asset_type.replace("_", " ");
      label.append(input, `${title}: ${a.asset_name || a.asset_id} ${subtitle} (${kind})`);
      box.append(label, document.createElement("br"));
    }
  }
}
function loadFbSdk(cb) {
  window.fbAsyncInit = function () {
    window.FB.init({appId: APP_ID, cookie: true, xfbml: false, version: "v19.0"});
    cb();
  };
  const script = document.createElement("script");
  script.src = "https://connect.facebook.net/en_US/sdk.js";
  script.async = true; script.defer = true;
  document.body.appendChild(script);
}
function triggerLogin() {
  window.FB.login(async (response) => {
    if (response.authResponse) {
      const code = response.authResponse.code;
      if (!code) { show("error", "Facebook returned a token instead of a code."); return; }
      try {
        await api("POST", "/admin/meta/connect", {code});
        show("success", "Meta account connected successfully!");
        await fetchStatus();
      } catch (err) { show("error", err.response?.data?.detail || "Error connecting Meta account"); }
    } else {
      show("error", "Facebook login was cancelled or failed.");
    }
  }, {scope: SCOPES, response_type: "code", override_default_response_type: true});
}
document.getElementById("connect").onclick = () => {
  show("error"); show("success");
  if (!window.FB) loadFbSdk(() => triggerLogin()); else triggerLogin();
};
document.getElementById("save").onclick = async () => {
  if (selected.size === 0) { show("error", "Select at least one asset to activate."); return; }
  try {
    const {data} = await api("POST", "/admin/meta/select-channels", {asset_ids: Array.from(selected)});
    show("success", data.data?.message || "Channels activated.");
    await fetchStatus();
  } catch (err) { show("error", err.response?.data?.detail || "Error activating channels"); }
};
document.getElementById("disconnect").onclick = async () => {
  if (!confirm("Are you sure you want to disconnect Meta?")) return;
  try {
    await api("DELETE", "/admin/meta/disconnect");
    show("success", "Meta account disconnected.");
    selected = new Set();
    await fetchStatus();
  } catch (err) { show("error", err.response?.data?.detail || "Error disconnecting"); }
};
fetchStatus();
</script></body></html>
"""


@pytest.fixture(scope="module")
def stack(crm_stack):
    """The API and CRM Ventas' panel on its origin, logged in with CRM Ventas' own token."""
    token = crm_stack.login_token
    crm_stack.serve_crm_page(PAGE, API=crm_stack.api, ADMIN=crm_stack.admin_token,
                             TENANT=str(crm_stack.tenant.tenant_id), JWT=token, APP_ID=APP_ID)
    return {"api": crm_stack.api, "crm": crm_stack.crm, "tenant": crm_stack.tenant, "token": token,
            "admin_token": crm_stack.admin_token}


def swap_in_the_sandbox_sdk(context, page, api: str) -> list[str]:
    """Intercept only connect.facebook.net's SDK (CDP Fetch), answering with the sandbox's."""
    sdk = requests.get(f"{api}/sandbox/meta/en_US/sdk.js", timeout=10)
    sdk.raise_for_status()
    body = base64.b64encode(sdk.content).decode()
    served: list[str] = []
    cdp = context.new_cdp_session(page)

    def paused(event):
        served.append(event["request"]["url"])
        cdp.send("Fetch.fulfillRequest", {
            "requestId": event["requestId"], "responseCode": 200, "body": body,
            "responseHeaders": [{"name": "Content-Type", "value": "application/javascript"}]})

    cdp.on("Fetch.requestPaused", paused)
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "https://connect.facebook.net/*"}]})
    return served


def check_every_answer_is_what_the_panel_reads(answers: list[dict]) -> None:
    assert answers
    for answer in answers:
        data = answer["data"]
        if answer["status"] >= 400:
            assert isinstance(data["detail"], str) and data["detail"], answer
            continue
        assert data["success"] is True, answer
        if answer["path"] == "/admin/meta/status":
            status = data["data"]
            assert isinstance(status["connected"], bool) and isinstance(status["token_valid"], bool)
            assert isinstance(status["token_expires_at"], int)
            assert set(status["channels"]) == {"facebook", "instagram", "whatsapp"}
            for asset in status["assets"]:
                assert set(asset) >= {"id", "platform", "asset_type", "asset_id", "asset_name",
                                      "parent_asset_id", "metadata"}
                assert isinstance(asset["asset_type"], str) and isinstance(asset["asset_id"], str)
            for binding in status["bindings"]:
                assert set(binding) >= {"id", "channel", "asset_id", "asset_name", "active"}
        if answer["path"] == "/admin/meta/select-channels":
            assert isinstance(data["data"]["message"], str)
        assert "EAA" not in json.dumps(data)  # never a token


def test_the_crm_ventas_panel_connects_chooses_channels_and_disconnects(browser, stack, artifacts):
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())  # the panel's confirm() before disconnect
    served = swap_in_the_sandbox_sdk(context, page, stack["api"])
    page.goto(f"{stack['crm']}/settings/integrations")
    expect(page.locator("#badge-facebook")).to_have_text("facebook: DISCONNECTED")

    # A popup closed without answering is a cancel: authResponse null, the panel says so.
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Connect with Facebook").click()
    popup = opened.value
    popup.wait_for_load_state()
    assert "/sandbox/meta/v19.0/dialog/oauth?" in popup.url
    popup.close()
    expect(page.locator("#error")).to_have_text("Facebook login was cancelled or failed.")
    assert served == [SDK_URL]

    # Cancel on the dialog: the same.
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Connect with Facebook").click()
    opened.value.locator('button[name="decision"][value="cancel"]').click()
    expect(page.locator("#error")).to_have_text("Facebook login was cancelled or failed.")

    # FB.login again on the same page: approve; the code goes to /admin/meta/connect.
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Connect with Facebook").click()
    popup = opened.value
    for scope in ("pages_messaging", "instagram_manage_messages", "whatsapp_business_messaging"):
        expect(popup.locator(f'input[value="{scope}"]')).to_be_checked()
    popup.locator('button[name="decision"][value="approve"]').click()
    expect(page.locator("#success")).to_have_text("Meta account connected successfully!")
    expect(page.locator("#token")).to_contain_text("Token valid")
    expect(page.locator("#badge-facebook")).to_have_text("facebook: NOT SELECTED")
    if not popup.is_closed():  # the SDK closes its popup once it has the answer
        popup.wait_for_event("close")
    folder = artifacts / "crm_panel"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "panel-connected.png"))

    # The same tenant's marketing status shows the same connection.
    marketing = requests.get(f"{stack['api']}/crm/marketing/token-status", timeout=10, headers={
        "Authorization": f"Bearer {stack['token']}", "X-Admin-Token": stack["admin_token"]})
    assert marketing.json()["data"]["connected"] is True

    # Choose a Page, its Instagram account and a phone number.
    page.locator('input[data-asset-id="1090000000000001"]').check()
    page.locator('input[data-asset-id="17841400000000001"]').check()
    page.locator('input[data-asset-id="1160000000000001"]').check()
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#success")).to_contain_text("3 channel(s) activated.")
    for channel in ("facebook", "instagram", "whatsapp"):
        expect(page.locator(f"#badge-{channel}")).to_have_text(f"{channel}: ACTIVE")
    held = requests.get(f"{stack['api']}/sandbox/meta/_sandbox/subscriptions", timeout=10).json()["data"]
    assert set(held) == {"1090000000000001", "1150000000000001"}
    page.screenshot(path=str(folder / "panel-channels.png"))

    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("#success")).to_have_text("Meta account disconnected.")
    expect(page.locator("#badge-whatsapp")).to_have_text("whatsapp: DISCONNECTED")
    held = requests.get(f"{stack['api']}/sandbox/meta/_sandbox/subscriptions", timeout=10).json()["data"]
    assert held == {}

    answers = page.evaluate("() => window.answers")
    assert [a["method"] for a in answers].count("DELETE") == 1
    check_every_answer_is_what_the_panel_reads(answers)
    assert not errors
    context.close()
