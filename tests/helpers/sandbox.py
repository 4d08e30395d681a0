"""What stands in for Meta: the sandbox's seeded ids, its control API, the connect flow through
its consent page, and Meta's signed_request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

# The sandbox's seeded data: an active ad account of the first business of the first test user.
ACCOUNT = "act_301000001000001"
BUSINESS = "2010000000000001"
# Graph paths, as the sandbox's call log names them (after the version).
DEBUG_TOKEN = "/debug_token"
EXCHANGE = "/oauth/access_token"


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


# -- Meta's signed_request ---------------------------------------------------------------------
def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(payload: dict, secret: str) -> str:
    """A signed_request as Meta builds it: HMAC-SHA256 of the encoded payload, with `secret`."""
    encoded = encode(json.dumps(payload).encode())
    sig = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return encode(sig) + "." + encoded
