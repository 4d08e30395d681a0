"""Fixtures for CRM Ventas' panel routes (/admin/meta/*): codes as the JavaScript SDK gets them
from the live sandbox, and the panel's own calls."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.helpers.settings import APP_ID
from tests.helpers.users import bearer

# MetaConnectionPanel.tsx's SCOPES, as it sends them.
PANEL_SCOPES = ("pages_show_list,pages_manage_metadata,pages_messaging,instagram_basic,"
                "instagram_manage_messages,business_management,whatsapp_business_management,"
                "whatsapp_business_messaging")
FIRST_PAGE = "1090000000000001"
SECOND_PAGE = "1090000000000002"
INSTAGRAM = "17841400000000001"
WABA = "1150000000000001"
PHONE = "1160000000000001"


@dataclass
class Panel:
    """The panel's side: FB.login's code from the sandbox, then its calls to our routes."""

    client: object
    sandbox_url: str
    tenant_id: int

    def sdk_code(self, *, scope: str = PANEL_SCOPES, decision: str = "approve", **params) -> str | None:
        """What FB.login hands the page: the dialog, opened by the SDK, returns to the SDK."""
        back = f"{self.sandbox_url}/x/connect/xd_arbiter?" + urlencode({"origin": "http://crm.test",
                                                                          "nonce": "n"})
        query = {"client_id": APP_ID, "redirect_uri": back, "response_type": "code", "scope": scope,
                 "override_default_response_type": "true", "state": "n", **params}
        url = f"{self.sandbox_url}/v19.0/dialog/oauth?{urlencode(query)}"
        response = requests.post(url, data={"decision": decision}, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text[:300]
        return parse_qs(urlsplit(response.headers["Location"]).query).get("code", [None])[0]

    def headers(self, role: str = "admin") -> dict:
        return bearer(self.tenant_id, role=role)

    def connect(self, code: str | None = None, role: str = "admin"):
        return self.client.post("/admin/meta/connect", json={"code": code or self.sdk_code()},
                                headers=self.headers(role))

    def status(self, role: str = "admin") -> dict:
        response = self.client.get("/admin/meta/status", headers=self.headers(role))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]

    def select(self, asset_ids, role: str = "admin"):
        return self.client.post("/admin/meta/select-channels", json={"asset_ids": asset_ids},
                                headers=self.headers(role))

    def disconnect(self, role: str = "admin"):
        return self.client.delete("/admin/meta/disconnect", headers=self.headers(role))


@pytest.fixture
def panel(client, tenant, sandbox):
    return Panel(client, sandbox.url, tenant.tenant_id)
