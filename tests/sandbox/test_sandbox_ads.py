"""The sandbox's ad sets, ads, field expansion, ad-level and async insights, leads from ads and
businesses as Meta serves them (docs/meta-conformance.md, rows G2-G8)."""

from __future__ import annotations

ACCOUNT = "act_301000001000001"
BUSINESS = "2010000000000001"
PAGE = "1090000000000001"
ADS = ["ads_management", "business_management"]
LEADS = ["pages_show_list", "pages_manage_ads", "leads_retrieval"]


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def test_an_accounts_ads_and_ad_sets_and_ad_nodes(meta):
    token = meta.mint(scopes=ADS)
    ads = _ok(meta.graph(f"/{ACCOUNT}/ads", token,
                         fields="name,status,adset_id,campaign_id,creative"))["data"]
    assert ads and all({"id", "name", "status", "adset_id", "campaign_id", "creative"} <= set(a) for a in ads)
    adsets = _ok(meta.graph(f"/{ACCOUNT}/adsets", token, fields="name,campaign_id,optimization_goal"))["data"]
    assert {a["adset_id"] for a in ads} <= {s["id"] for s in adsets}
    ad = _ok(meta.graph(f"/{ads[0]['id']}", token))
    assert ad == {"id": ads[0]["id"]}  # an Ad node's default field is its id
    full = _ok(meta.graph(f"/{ads[0]['id']}", token, fields="name,account_id,effective_status"))
    assert full["account_id"] == ACCOUNT[4:]
    campaign_ads = _ok(meta.graph(f"/{ads[0]['campaign_id']}/ads", token))["data"]
    assert ads[0]["id"] in {a["id"] for a in campaign_ads}
    err = meta.graph(f"/{ads[0]['id']}", token, fields="name,nonsense").json()["error"]
    assert err["code"] == 100 and "(nonsense) on node type (Ad)" in err["message"]


def test_field_expansion_on_campaigns_and_ads(meta):
    token = meta.mint(scopes=ADS)
    campaigns = _ok(meta.graph(f"/{ACCOUNT}/campaigns", token,
                               fields="name,insights.date_preset(last_7d){spend,impressions,campaign_id},"
                                      "adsets.limit(1){name},ads{name}"))["data"]
    first = campaigns[0]
    rows = first["insights"]["data"]
    assert rows and {"spend", "impressions", "campaign_id", "date_start", "date_stop"} == set(rows[0])
    assert rows[0]["campaign_id"] == first["id"]
    assert len(first["adsets"]["data"]) == 1 and first["ads"]["data"][0]["name"]
    ads = _ok(meta.graph(f"/{ACCOUNT}/ads", token,
                         fields="name,campaign{name},adset{name},insights{ad_id,spend}"))
    ad = ads["data"][0]
    assert set(ad["campaign"]) == {"id", "name"} and set(ad["adset"]) == {"id", "name"}
    assert ad["insights"]["data"][0]["ad_id"] == ad["id"]
    aliased = _ok(meta.graph(f"/{ad['id']}", token, fields="name.as(title),campaign.as(c){name}"))
    assert set(aliased) == {"title", "c", "id"}


def test_ad_level_insights_carry_the_ads_ids_and_every_invalid_field_is_named(meta):
    token = meta.mint(scopes=ADS)
    rows = _ok(meta.graph(f"/{ACCOUNT}/insights", token, level="ad", date_preset="last_7d",
                          fields="ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,spend"))["data"]
    assert rows and all(r["ad_id"] and r["adset_id"] and r["campaign_id"] and r["ad_name"] for r in rows)
    err = meta.graph(f"/{ACCOUNT}/insights", token, fields="spend,impresions,clikcs").json()["error"]
    assert err["code"] == 100
    assert err["message"].startswith("(#100) impresions, clikcs are not valid for fields param.")
    one = meta.graph(f"/{ACCOUNT}/insights", token, fields="spend,impresions").json()["error"]
    assert one["message"].startswith("(#100) impresions is not valid for fields param.")


def test_async_insights_a_report_run_its_status_and_its_results(meta):
    token = meta.mint(scopes=ADS)
    started = _ok(meta.graph(f"/{ACCOUNT}/insights", token, "POST", level="campaign",
                             date_preset="last_7d", fields="campaign_id,spend"))
    run_id = started["report_run_id"]
    status = _ok(meta.graph(f"/{run_id}", token))
    assert status["async_status"] == "Job Completed" and status["async_percent_completion"] == 100
    assert status["account_id"] == ACCOUNT[4:] and status["id"] == run_id
    rows = _ok(meta.graph(f"/{run_id}/insights", token))["data"]
    assert rows and {"campaign_id", "spend", "date_start", "date_stop"} == set(rows[0])
    bad = meta.graph(f"/{ACCOUNT}/insights", token, "POST", fields="spend,nope").json()["error"]
    assert bad["code"] == 100 and "nope" in bad["message"]


def test_leads_from_ads_carry_the_ad_its_ad_set_and_campaign(meta):
    token = meta.mint(scopes=ADS + LEADS)
    forms = _ok(meta.graph(f"/{PAGE}/leadgen_forms", token))["data"]
    leads = _ok(meta.graph(f"/{forms[0]['id']}/leads", token,
                           fields="id,form_id,ad_id,adset_id,campaign_id,is_organic"))["data"]
    paid = [lead for lead in leads if not lead["is_organic"]]
    organic = [lead for lead in leads if lead["is_organic"]]
    assert paid and organic
    assert all({"ad_id", "adset_id", "campaign_id"} <= set(lead) for lead in paid)
    assert all("ad_id" not in lead for lead in organic)
    assert all(lead["form_id"] == forms[0]["id"] for lead in leads)
    ad = _ok(meta.graph(f"/{paid[0]['ad_id']}", token, fields="adset_id,campaign_id"))
    assert (ad["adset_id"], ad["campaign_id"]) == (paid[0]["adset_id"], paid[0]["campaign_id"])


def test_businesses_have_updated_time_and_a_primary_page(meta):
    token = meta.mint(scopes=ADS)
    business = _ok(meta.graph(f"/{BUSINESS}", token, fields="id,name,updated_time,primary_page"))
    assert business["updated_time"].endswith("+0000")
    assert business["primary_page"] == {"name": business["primary_page"]["name"], "id": PAGE}
