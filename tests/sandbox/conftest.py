"""Fixtures for the Meta sandbox's own tests: one live sandbox, reset before each test.

Tests reach constants and helpers through the `meta` fixture (meta.app_id, meta.proof(...))
so that no test module imports another.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from meta_sandbox import create_sandbox_app, serve_in_thread

APP_ID = "424242424242424"
APP_SECRET = "sandbox-test-secret-0123456789"
REDIRECT_URI = "http://localhost:8000/crm/auth/meta/callback"
VERSION = "v25.0"
PRODUCT_SCOPES = (
    "ads_management,business_management,whatsapp_business_management,pages_read_engagement,read_insights"
)


def proof(token: str, timestamp: int | None = None) -> str:
    """appsecret_proof as a client computes it."""
    message = token if timestamp is None else f"{token}|{timestamp}"
    return hmac.new(APP_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect Location (one value each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


class Meta:
    """Talks to the live sandbox like a browser, a backend and a test operator would."""

    app_id = APP_ID
    app_secret = APP_SECRET
    redirect_uri = REDIRECT_URI
    version = VERSION
    proof = staticmethod(proof)
    query_of = staticmethod(query_of)

    def __init__(self, url: str, sandbox, http: requests.Session) -> None:
        self.url = url
        self.sandbox = sandbox
        self.http = http

    # -- dialog ----------------------------------------------------------------------
    def dialog_url(self, version: str = VERSION, **params) -> str:
        query = {"client_id": APP_ID, "redirect_uri": REDIRECT_URI, "state": "st-123"}
        query.setdefault("scope", PRODUCT_SCOPES)
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        return f"{self.url}/{version}/dialog/oauth?{urlencode(query)}"

    def consent(self, url: str, **form) -> requests.Response:
        return self.http.post(url, data=form, allow_redirects=False, timeout=10)

    def approve(self, granted=None, user_id=None, **params) -> str:
        """Approve the dialog; returns the Location header."""
        form = {"decision": "approve"}
        if granted is not None:
            form.update({"granted": granted, "consent_form": "1"})
        if user_id:
            form["user_id"] = user_id
        response = self.consent(self.dialog_url(**params), **form)
        assert response.status_code == 302, response.text[:300]
        return response.headers["Location"]

    def code(self, **kwargs) -> str:
        return query_of(self.approve(**kwargs))["code"]

    # -- tokens ------------------------------------------------------------------------
    def exchange(self, code: str, **overrides) -> requests.Response:
        params = {
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "redirect_uri": REDIRECT_URI,
            "code": code,
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        return self.http.get(f"{self.url}/{VERSION}/oauth/access_token", params=params, timeout=10)

    def login(self, **kwargs) -> str:
        """Dialog -> code -> token; returns the access token."""
        response = self.exchange(self.code(**kwargs))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def extend(self, token: str) -> requests.Response:
        params = {
            "grant_type": "fb_exchange_token",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "fb_exchange_token": token,
        }
        return self.http.get(f"{self.url}/{VERSION}/oauth/access_token", params=params, timeout=10)

    def debug(self, token: str) -> dict:
        response = self.http.get(
            f"{self.url}/{VERSION}/debug_token",
            params={"input_token": token, "access_token": f"{APP_ID}|{APP_SECRET}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def mint(self, **body) -> str:
        return self.control("tokens", **body)["access_token"]

    # -- graph -------------------------------------------------------------------------
    def graph(self, path: str, token: str | None, method: str = "GET", *, version: str = VERSION,
              **params):
        """A Graph call with the token in the Authorization header and a plain proof."""
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
            params.setdefault("appsecret_proof", proof(token))
        return self.http.request(
            method, f"{self.url}/{version}{path}", params=params, headers=headers, timeout=10
        )

    # -- control -----------------------------------------------------------------------
    def control(self, endpoint: str, /, **body):
        response = self.http.post(f"{self.url}/_sandbox/{endpoint}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def calls(self) -> list[dict]:
        return self.http.get(f"{self.url}/_sandbox/calls", timeout=10).json()["calls"]


@pytest.fixture(scope="session")
def sandbox_app():
    """The standalone sandbox app (the Sandbox is in app.extensions["meta_sandbox"])."""
    return create_sandbox_app(APP_ID, APP_SECRET, REDIRECT_URI)


@pytest.fixture(scope="session")
def live_sandbox(sandbox_app):
    """The sandbox served on a random port for the whole session."""
    server = serve_in_thread(sandbox_app)
    yield server
    server.shutdown()


@pytest.fixture
def meta(sandbox_app, live_sandbox):
    """A reset sandbox and a helper that talks to it over real HTTP."""
    sandbox = sandbox_app.extensions["meta_sandbox"]
    sandbox.reset()
    with requests.Session() as http:
        yield Meta(live_sandbox.url, sandbox, http)
    sandbox.reset()


@pytest.fixture
def client(sandbox_app, meta):
    """Flask test client of the same (reset) sandbox."""
    return sandbox_app.test_client()
