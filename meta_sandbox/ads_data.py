"""Ad sets and ads under the sandbox's campaigns, leads that came from those ads, and async
insights report runs: the objects, built once per marketing state (same seed, same data).

Shapes from Meta's Marketing API reference (AdSet, Ad, AdReportRun, Lead): an ad carries its
`adset_id` and `campaign_id`; a lead from an ad carries `ad_id`, `adset_id`, `campaign_id` (and
their names) beside `form_id`; an organic lead carries none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import marketing_data as data

ADSET_FIELDS = frozenset({
    "id", "account_id", "campaign_id", "name", "status", "configured_status", "effective_status",
    "daily_budget", "lifetime_budget", "budget_remaining", "optimization_goal", "billing_event",
    "bid_strategy", "created_time", "updated_time", "start_time", "end_time",
})
AD_FIELDS = frozenset({
    "id", "account_id", "campaign_id", "adset_id", "name", "status", "configured_status",
    "effective_status", "creative", "created_time", "updated_time",
})
RUN_FIELDS = frozenset({
    "id", "account_id", "async_status", "async_percent_completion", "date_start", "date_stop",
    "time_ref", "time_completed", "is_running",
})
DEFAULTS = {"AdSet": ("id",), "Ad": ("id",),
            # chosen: Meta's reference lists no defaults for a report run; these are what clients poll
            "AdReportRun": ("id", "account_id", "async_status", "async_percent_completion")}
TYPE_FIELDS = {"AdSet": ADSET_FIELDS, "Ad": AD_FIELDS, "AdReportRun": RUN_FIELDS}
_ADSET_BASE = 23851000000000000
_AD_BASE = 23852000000000000
_CREATIVE_BASE = 23853000000000000
_RUN_BASE = 1900000000000000


@dataclass
class Ads:
    """The ad sets, ads and report runs of one marketing state."""

    state: data.State
    adsets: dict[str, list[str]] = field(default_factory=dict)  # campaign id -> ad set ids
    ads: dict[str, list[str]] = field(default_factory=dict)  # ad set id -> ad ids
    runs: int = 0


def of(sandbox) -> Ads:
    """The ads of the sandbox's current marketing state (built on first use)."""
    state = data.state(sandbox)
    ads = state.__dict__.get("_ads")
    if ads is None:
        ads = state.__dict__["_ads"] = _build(state)
    return ads


def _build(state: data.State) -> Ads:
    ads = Ads(state)
    adset_n = ad_n = 0
    every_ad: list[dict[str, Any]] = []
    for account_id, campaign_ids in state.campaigns.items():
        for campaign_id in campaign_ids:
            campaign = state.objects[campaign_id]
            adset_n += 1
            adset = {key: campaign[key] for key in ("account_id", "status", "configured_status",
                                                    "effective_status", "created_time", "updated_time",
                                                    "start_time", "daily_budget", "budget_remaining")}
            adset.update({"_type": "AdSet", "_account_id": account_id,
                          "_business_id": campaign["_business_id"], "_campaign_id": campaign_id,
                          "id": str(_ADSET_BASE + adset_n), "campaign_id": campaign_id,
                          "name": f"{campaign['name']} · Público",
                          "optimization_goal": "LEAD_GENERATION", "billing_event": "IMPRESSIONS",
                          "bid_strategy": campaign["bid_strategy"]})
            ads.adsets[campaign_id] = [data.add(state, adset)]
            ads.ads[adset["id"]] = []
            for k in range(2):
                ad_n += 1
                ad = {key: adset[key] for key in ("account_id", "campaign_id", "created_time",
                                                  "updated_time")}
                status = adset["status"] if k == 0 else "PAUSED"
                ad.update({"_type": "Ad", "_account_id": account_id, "_business_id": adset["_business_id"],
                           "_campaign_id": campaign_id, "_adset_id": adset["id"], "id": str(_AD_BASE + ad_n),
                           "adset_id": adset["id"], "name": f"Anuncio {k + 1} · {campaign['name']}",
                           "status": status, "configured_status": status, "effective_status": status,
                           "creative": {"id": str(_CREATIVE_BASE + ad_n)}})
                ads.ads[adset["id"]].append(data.add(state, ad))
                every_ad.append(ad)
    _leads_from_ads(state, every_ad)
    return ads


def _leads_from_ads(state: data.State, every_ad: list[dict[str, Any]]) -> None:
    """A lead that is not organic came from an ad: it names the ad, its ad set and campaign."""
    if not every_ad:
        return
    for n, lead_id in enumerate(i for ids in state.leads.values() for i in ids):
        lead = state.objects[lead_id]
        if lead["is_organic"]:
            continue
        ad = every_ad[n % len(every_ad)]
        adset, campaign = state.objects[ad["adset_id"]], state.objects[ad["campaign_id"]]
        lead.update(ad_id=ad["id"], ad_name=ad["name"], adset_id=adset["id"], adset_name=adset["name"],
                    campaign_id=campaign["id"], campaign_name=campaign["name"])


def adsets_of(ads: Ads, parent: dict[str, Any]) -> list[dict[str, Any]]:
    """An account's or a campaign's ad sets."""
    objects = ads.state.objects
    if parent["_type"] == "Campaign":
        return [objects[i] for i in ads.adsets.get(parent["id"], [])]
    return [objects[i] for c in ads.state.campaigns.get(parent["id"], []) for i in ads.adsets.get(c, [])]


def ads_of(ads: Ads, parent: dict[str, Any]) -> list[dict[str, Any]]:
    """An account's, a campaign's or an ad set's ads."""
    objects = ads.state.objects
    if parent["_type"] == "AdSet":
        return [objects[i] for i in ads.ads.get(parent["id"], [])]
    return [objects[i] for s in adsets_of(ads, parent) for i in ads.ads.get(s["id"], [])]


def new_run(ads: Ads, account: dict[str, Any], params: dict[str, str], since, until, now) -> dict[str, Any]:
    """An async report run, done at once (the sandbox computes rows when they are read)."""
    ads.runs += 1
    stamp = int(now.timestamp())
    run = {"_type": "AdReportRun", "_account_id": account["id"], "_business_id": account.get("_business_id"),
           "_params": dict(params), "id": str(_RUN_BASE + ads.runs), "account_id": account["account_id"],
           "async_status": "Job Completed", "async_percent_completion": 100, "is_running": False,
           "date_start": since.isoformat(), "date_stop": until.isoformat(), "time_ref": stamp,
           "time_completed": stamp}
    return ads.state.objects.setdefault(run["id"], run)
