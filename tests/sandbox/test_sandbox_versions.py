"""The sandbox keeps Meta's two calendars: a Marketing API call to a version the Marketing API
retired is upgraded to the oldest one still served and says so in `X-Ad-Api-Version-Warning`;
Graph calls with the same version are served as they are. Marketing calls stay out of the app's
Graph budget (business use case limits instead)."""

from __future__ import annotations

import requests

from crm_meta.meta.graph import appsecret_proof
from tests.helpers.sandbox import ACCOUNT
from tests.helpers.settings import APP_SECRET

PAGE = "1090000000000001"


def mint(sandbox) -> str:
    return sandbox.post("tokens")["access_token"]


def get(sandbox, token: str, path: str) -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", timeout=10, params={
        "access_token": token, "appsecret_proof": appsecret_proof(APP_SECRET, token)})


def test_a_retired_marketing_version_is_upgraded_with_metas_warning(sandbox):
    token = mint(sandbox)
    upgraded = get(sandbox, token, f"/v24.0/{ACCOUNT}/campaigns")  # Marketing v24.0: gone 2026-11-10
    assert upgraded.status_code == 200
    assert upgraded.headers["facebook-api-version"] == "v25.0"
    assert upgraded.headers["x-ad-api-version-warning"] == (
        "The call has been auto-upgraded to v25.0 as v24.0 has been deprecated.")
    served = get(sandbox, token, f"/v25.0/{ACCOUNT}/campaigns")
    assert "x-ad-api-version-warning" not in served.headers
    graph = get(sandbox, token, f"/v24.0/{PAGE}")  # Graph's v24.0 runs to 2028-02-18
    assert graph.headers["facebook-api-version"] == "v24.0"
    assert "x-ad-api-version-warning" not in graph.headers
    sandbox.advance(90 * 86400)  # past 2027-02-23: v25.0 leaves the Marketing API too
    later = get(sandbox, mint(sandbox), f"/v25.0/{ACCOUNT}/campaigns")
    assert later.headers["facebook-api-version"] == "v26.0" and "v25.0" in later.headers[
        "x-ad-api-version-warning"]


def test_marketing_calls_do_not_spend_the_apps_graph_budget(sandbox):
    sandbox.post("config", app_call_budget=2)
    token = mint(sandbox)
    for _ in range(5):
        answer = get(sandbox, token, f"/v25.0/{ACCOUNT}/campaigns")
        assert answer.status_code == 200
    assert answer.headers["x-app-usage"].startswith('{"call_count": 0')
