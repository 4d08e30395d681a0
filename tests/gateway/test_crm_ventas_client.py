"""A client written like CRM Ventas' MetaAdsClient works through the gateway with only its base
URL and its token changed (the token it reads as META_USER_LONG_TOKEN), and sees what it sees
at Meta with the real token."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gateway import crm_ventas_client
from tests.helpers.sandbox import ACCOUNT

CREDENTIALS = "/internal/meta/connections/acme/credentials?format=crm-ventas"


def everything(account_digits: str, token: str) -> dict:
    client = crm_ventas_client.AdsClient(token)

    async def read():
        found = {"account": await client.account_insights(account_digits),
                 "daily": await client.daily_spend(account_digits),
                 "campaigns": await client.campaigns(account_digits),
                 "ads": await client.ads_with_insights(account_digits)}
        found["ad"] = await client.ad_details(found["ads"][0]["id"])
        return found

    # In a thread of its own: a test elsewhere (a browser, an SMTP server) may leave an event
    # loop running in this one, and asyncio.run refuses to nest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_crm_ventas_client_through_the_gateway_sees_what_meta_shows(app, live, client, connect, sandbox,
                                                                    proxy_service, stored_token,
                                                                    monkeypatch):
    acme = connect("acme")
    # What CRM Ventas stores from crm-meta: its own names, the gateway token, bare account digits.
    stored = client.get(CREDENTIALS, headers=proxy_service.headers).get_json()["data"]
    monkeypatch.setattr(crm_ventas_client, "GRAPH_API_BASE", f"{live.graph}/v25.0")
    through = everything(stored["META_AD_ACCOUNT_ID"], stored["META_USER_LONG_TOKEN"])
    assert through["account"] and through["account"][0]["account_id"] == ACCOUNT.removeprefix("act_")
    assert len(through["daily"]) == 14 and len(through["campaigns"]) == 3  # followed paging.next
    assert through["ads"] and "data" in through["ads"][0]["insights"]  # field expansion
    assert through["ad"]["campaign_name"] and through["ad"]["adset_name"]
    # The same client at Meta with the real token (it sends no appsecret_proof: the Meta app must
    # not require one for it, see README).
    sandbox.post("config", require_appsecret_proof=False)
    monkeypatch.setattr(crm_ventas_client, "GRAPH_API_BASE", f"{sandbox.url}/v25.0")
    assert everything(ACCOUNT.removeprefix("act_"), stored_token(app, acme.tenant_id)) == through


def test_its_errors_are_graph_errors_it_can_read(live, client, connect, proxy_service, monkeypatch):
    connect("acme")
    stored = client.get(CREDENTIALS, headers=proxy_service.headers).get_json()["data"]
    monkeypatch.setattr(crm_ventas_client, "GRAPH_API_BASE", f"{live.graph}/v21.0")  # its default
    with pytest.raises(crm_ventas_client.MetaError) as refused:
        everything(stored["META_AD_ACCOUNT_ID"], stored["META_USER_LONG_TOKEN"])
    assert refused.value.status == 400 and refused.value.code == 2635
