"""A Graph client written the way CRM Ventas' marketing service writes one
(`orchestrator_service/services/marketing/meta_ads_service.py`, `MetaAdsClient`): httpx, async,
a module-level base URL with the version in it, the token as the `access_token` query parameter,
`paging.next` followed as it is. Written here from what that code does; the tests change only
GRAPH_API_BASE and the token, as a deployment would."""

from __future__ import annotations

import json

import httpx

GRAPH_API_VERSION = "v25.0"
GRAPH_API_BASE = f"https://graph.facebook.com/{GRAPH_API_VERSION}"
REQUEST_TIMEOUT = 5.0


class MetaError(Exception):
    """Any non-200 answer, with Meta's code."""

    def __init__(self, status: int, body: dict):
        error = body.get("error") or {}
        super().__init__(f"{status}: {error.get('message')}")
        self.status, self.code = status, error.get("code")


class AdsClient:
    def __init__(self, access_token: str):
        self.access_token = access_token

    async def _all_pages(self, url: str, params: dict) -> list[dict]:
        found = []
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            current = url
            while current:
                response = await client.get(current, params=params if current == url else None)
                if response.status_code != 200:
                    raise MetaError(response.status_code, response.json())
                data = response.json()
                found += data.get("data", [])
                current = data.get("paging", {}).get("next")
        return found

    async def account_insights(self, ad_account_id: str, date_preset: str = "last_30d") -> list[dict]:
        account = ad_account_id if ad_account_id.startswith("act_") else f"act_{ad_account_id}"
        return await self._all_pages(f"{GRAPH_API_BASE}/{account}/insights", {
            "fields": "spend,impressions,clicks,account_currency,account_id", "level": "account",
            "date_preset": date_preset, "access_token": self.access_token, "limit": 1000})

    async def daily_spend(self, ad_account_id: str) -> list[dict]:
        account = ad_account_id if ad_account_id.startswith("act_") else f"act_{ad_account_id}"
        return await self._all_pages(f"{GRAPH_API_BASE}/{account}/insights", {
            "fields": "spend", "date_preset": "last_14d", "time_increment": 1,
            "access_token": self.access_token, "limit": 3})

    async def ad_details(self, ad_id: str) -> dict:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            response = await client.get(f"{GRAPH_API_BASE}/{ad_id}", params={
                "fields": "name,campaign{name},adset{name}", "access_token": self.access_token})
        if response.status_code != 200:
            raise MetaError(response.status_code, response.json())
        data = response.json()
        return {"ad_id": ad_id, "ad_name": data.get("name"),
                "campaign_name": (data.get("campaign") or {}).get("name"),
                "adset_name": (data.get("adset") or {}).get("name")}

    async def ads_with_insights(self, ad_account_id: str, date_preset: str = "last_30d") -> list[dict]:
        account = ad_account_id if ad_account_id.startswith("act_") else f"act_{ad_account_id}"
        expansion = f"insights.date_preset({date_preset}){{spend,impressions,clicks,account_currency}}"
        return await self._all_pages(f"{GRAPH_API_BASE}/{account}/ads", {
            "fields": f"id,name,effective_status,campaign{{id,name}},{expansion}",
            "access_token": self.access_token, "limit": 100})

    async def campaigns(self, ad_account_id: str) -> list[dict]:
        account = ad_account_id if ad_account_id.startswith("act_") else f"act_{ad_account_id}"
        statuses = ["ACTIVE", "PAUSED", "DELETED", "ARCHIVED"]
        return await self._all_pages(f"{GRAPH_API_BASE}/{account}/campaigns", {
            "fields": "id,name,effective_status", "access_token": self.access_token, "limit": 2,
            "filtering": json.dumps([{"field": "effective_status", "operator": "IN", "value": statuses}])})
