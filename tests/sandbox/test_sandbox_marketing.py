"""The sandbox's marketing nodes: campaigns, insights, lead forms and leads, with usage headers."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from meta_sandbox import USER_WITHOUT_BUSINESSES
from meta_sandbox.insights import preset_range
from tests.helpers.graph import every_page

ACCOUNT = "act_301000001000001"  # active, owned by the first business of the first test user
OTHER_ACCOUNT = "act_301000001000003"
BUSINESS = "2010000000000001"
PAGE = "1090000000000001"
ADS = ["ads_management", "business_management"]
LEADS = ["pages_show_list", "pages_manage_ads", "leads_retrieval"]


def _error(response, status=400):
    assert response.status_code == status, response.text
    return response.json()["error"]


def _walk(meta, token, first):
    """Every item of a listing, following Meta's `next` links (token and proof carried along)."""
    return every_page(first, lambda link: meta.http.get(link, headers={"Authorization": f"Bearer {token}"},
                                                        timeout=10))


def test_campaigns_edge_lists_ids_by_default_and_fields_on_request(meta):
    token = meta.mint(scopes=ADS)
    listing = meta.graph(f"/{ACCOUNT}/campaigns", token).json()
    assert listing["data"] and all(set(c) == {"id"} for c in listing["data"])
    detailed = meta.graph(f"/{ACCOUNT}/campaigns", token, fields="name,objective,status,daily_budget").json()
    campaign = detailed["data"][0]
    assert {"id", "name", "objective", "status", "daily_budget"} == set(campaign)
    assert campaign["objective"].startswith("OUTCOME_") and campaign["daily_budget"].isdigit()
    assert set(detailed["paging"]["cursors"]) == {"before", "after"}
    one = meta.graph(f"/{campaign['id']}", token, fields="name,account_id").json()
    assert one == {"name": campaign["name"], "account_id": ACCOUNT[4:], "id": campaign["id"]}
    err = _error(meta.graph(f"/{ACCOUNT}/campaigns", token, fields="name,nonsense"))
    assert err["code"] == 100 and "nonsense" in err["message"]


def test_a_campaign_created_with_post_is_listed_updated_and_deleted(meta):
    token = meta.mint(scopes=ADS)
    created = meta.graph(f"/{ACCOUNT}/campaigns", token, "POST", name="Black Friday",
                         objective="OUTCOME_LEADS", status="PAUSED", special_ad_categories="[]")
    assert created.status_code == 200, created.text
    campaign_id = created.json()["id"]
    assert campaign_id.isdigit()
    names = [c["name"] for c in meta.graph(f"/{ACCOUNT}/campaigns", token, fields="name").json()["data"]]
    assert "Black Friday" in names
    assert meta.graph(f"/{campaign_id}", token, "POST", status="ACTIVE").json() == {"success": True}
    assert meta.graph(f"/{campaign_id}", token, fields="status").json()["status"] == "ACTIVE"
    assert meta.graph(f"/{campaign_id}", token, "DELETE").json() == {"success": True}
    assert meta.graph(f"/{campaign_id}", token, fields="status").json()["status"] == "DELETED"
    ids = [c["id"] for c in meta.graph(f"/{ACCOUNT}/campaigns", token).json()["data"]]
    assert campaign_id not in ids  # deleted campaigns leave the edge, like Meta's default filter


@pytest.mark.parametrize(("params", "word"), [
    ({"objective": "OUTCOME_LEADS", "special_ad_categories": "[]"}, "name"),
    ({"name": "x", "special_ad_categories": "[]"}, "objective"),
    ({"name": "x", "objective": "OUTCOME_LEADS"}, "special_ad_categories"),
    ({"name": "x", "objective": "LEADS_PLEASE", "special_ad_categories": "[]"}, "objective"),
    ({"name": "x", "objective": "OUTCOME_LEADS", "special_ad_categories": '["NO"]'}, "special_ad_categories"),
])
def test_creating_a_campaign_checks_parameters_like_meta(meta, params, word):
    token = meta.mint(scopes=ADS)
    err = _error(meta.graph(f"/{ACCOUNT}/campaigns", token, "POST", **params))
    assert err["code"] == 100 and word in err["message"]


def test_writes_need_ads_management_reads_do_not(meta):
    token = meta.mint(scopes=["ads_read", "business_management"])
    assert meta.graph(f"/{ACCOUNT}/campaigns", token).status_code == 200
    err = _error(meta.graph(f"/{ACCOUNT}/campaigns", token, "POST", name="x", objective="OUTCOME_LEADS",
                            special_ad_categories="[]"), 403)
    assert err["code"] == 200 and "ads_management" in err["message"]
    err = _error(meta.graph(f"/{ACCOUNT}/insights", meta.mint(scopes=["business_management"])), 403)
    assert err["code"] == 200


def test_another_users_account_and_campaigns_are_unsupported(meta):
    owner = meta.mint(scopes=ADS)
    campaign_id = meta.graph(f"/{ACCOUNT}/campaigns", owner).json()["data"][0]["id"]
    stranger = meta.mint(user_id=USER_WITHOUT_BUSINESSES, scopes=ADS)
    for path in (f"/{ACCOUNT}/campaigns", f"/{ACCOUNT}/insights", f"/{campaign_id}"):
        err = _error(meta.graph(path, stranger))
        assert (err["code"], err["error_subcode"]) == (100, 33)


def test_insights_cover_the_preset_range_as_strings(meta):
    token = meta.mint(scopes=ADS)
    today = datetime.fromisoformat(meta.control("clock", advance_seconds=0)["now"]).date()
    row = meta.graph(f"/{ACCOUNT}/insights", token, date_preset="last_7d",
                     fields="impressions,clicks,spend,ctr,account_currency").json()["data"][0]
    assert row["date_start"] == (today - timedelta(days=7)).isoformat()
    assert row["date_stop"] == (today - timedelta(days=1)).isoformat()
    assert all(isinstance(row[k], str) for k in ("impressions", "clicks", "spend", "ctr"))
    assert int(row["impressions"]) > int(row["clicks"]) >= 0
    again = meta.graph(f"/{ACCOUNT}/insights", token, date_preset="last_7d",
                       fields="impressions,clicks,spend,ctr,account_currency").json()["data"][0]
    assert again == row  # deterministic figures
    default = meta.graph(f"/{ACCOUNT}/insights", token).json()["data"][0]
    assert default["date_start"] == (today - timedelta(days=30)).isoformat()  # last_30d


def test_daily_insights_page_with_cursors_and_next_links(meta):
    token = meta.mint(scopes=ADS)
    first = meta.graph(f"/{ACCOUNT}/insights", token, date_preset="last_14d", time_increment="1",
                       fields="spend", limit="5")
    assert len(first.json()["data"]) == 5 and "next" in first.json()["paging"]
    rows = _walk(meta, token, first)
    days = [r["date_start"] for r in rows]
    assert len(days) == 14 and days == sorted(set(days))
    assert all(r["date_start"] == r["date_stop"] for r in rows)


def test_campaign_level_insights_and_a_campaigns_own(meta):
    token = meta.mint(scopes=ADS)
    rows = meta.graph(f"/{ACCOUNT}/insights", token, level="campaign", date_preset="yesterday",
                      fields="campaign_id,campaign_name,spend").json()["data"]
    assert rows and all({"campaign_id", "campaign_name", "spend"} <= set(r) for r in rows)
    own = meta.graph(f"/{rows[0]['campaign_id']}/insights", token, date_preset="yesterday",
                     fields="campaign_id,spend").json()["data"]
    assert own == [{"campaign_id": rows[0]["campaign_id"], "spend": rows[0]["spend"],
                    "date_start": rows[0]["date_start"], "date_stop": rows[0]["date_stop"]}]


@pytest.mark.parametrize(("params", "code", "word"), [
    ({"date_preset": "last_8d"}, 100, "date_preset"),
    ({"fields": "spend,views_of_mars"}, 100, "views_of_mars"),
    ({"level": "galaxy"}, 100, "level"),
    ({"time_increment": "365"}, 100, "time_increment"),
    ({"time_range": '{"since":"2001-01-01","until":"2001-01-02"}'}, 3018, "37 months"),
])
def test_bad_insights_parameters_are_refused(meta, params, code, word):
    err = _error(meta.graph(f"/{ACCOUNT}/insights", meta.mint(scopes=ADS), **params))
    assert err["code"] == code and word in err["message"]


def test_every_date_preset_is_a_sane_range():
    today = date(2026, 11, 30)  # a Monday
    for preset in ("today", "yesterday", "last_3d", "last_90d", "this_month", "last_month",
                   "this_quarter", "last_quarter", "this_year", "last_year", "this_week_mon_today",
                   "this_week_sun_today", "last_week_mon_sun", "last_week_sun_sat", "maximum"):
        since, until = preset_range(preset, today)
        assert since <= until <= today, preset
    assert preset_range("last_month", today) == (date(2026, 10, 1), date(2026, 10, 31))
    assert preset_range("last_week_mon_sun", today) == (date(2026, 11, 23), date(2026, 11, 29))
    assert preset_range("last_quarter", today) == (date(2026, 7, 1), date(2026, 9, 30))


def test_lead_forms_and_their_leads_page_through(meta):
    token = meta.mint(scopes=LEADS)
    forms = meta.graph(f"/{PAGE}/leadgen_forms", token).json()["data"]
    assert {"id", "name", "status", "locale"} == set(forms[0])
    first = meta.graph(f"/{forms[0]['id']}/leads", token)
    leads = _walk(meta, token, first)
    assert len(first.json()["data"]) == 25 and len(leads) == 30
    lead = leads[0]
    assert {"id", "created_time", "field_data"} == set(lead)
    assert {f["name"] for f in lead["field_data"]} == {"full_name", "email", "phone_number"}
    newest = datetime.strptime(leads[-1]["created_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    recent = meta.graph(f"/{forms[0]['id']}/leads", token, filtering=json.dumps(
        [{"field": "time_created", "operator": "GREATER_THAN", "value": int(newest) - 1}])).json()["data"]
    assert [r["id"] for r in recent] == [leads[-1]["id"]]


def test_leads_need_leads_retrieval_and_forms_need_pages_manage_ads(meta):
    no_leads = meta.mint(scopes=["pages_show_list", "pages_manage_ads"])
    form_id = meta.graph(f"/{PAGE}/leadgen_forms", no_leads).json()["data"][0]["id"]
    err = _error(meta.graph(f"/{form_id}/leads", no_leads), 403)
    assert "leads_retrieval" in err["message"]
    err = _error(meta.graph(f"/{PAGE}/leadgen_forms", meta.mint(scopes=["pages_show_list"])), 403)
    assert "pages_manage_ads" in err["message"]


def test_ad_account_usage_rises_with_each_call_to_that_account(meta):
    meta.control("config", ad_account_call_budget=10, business_call_budget=20)
    token = meta.mint(scopes=ADS)
    seen = []
    for _ in range(3):
        response = meta.graph(f"/{ACCOUNT}/campaigns", token)
        seen.append(json.loads(response.headers["x-ad-account-usage"])["acc_id_util_pct"])
    assert seen == [10, 20, 30]
    buc = json.loads(response.headers["x-business-use-case-usage"])[BUSINESS][0]
    assert buc["call_count"] == 15 and buc["type"] == "ads_management"
    other = meta.graph(f"/{OTHER_ACCOUNT}/insights", token)
    assert json.loads(other.headers["x-ad-account-usage"])["acc_id_util_pct"] == 10
    assert json.loads(other.headers["x-business-use-case-usage"])[BUSINESS][0]["type"] == "ads_insights"


def test_a_spent_ad_account_budget_answers_80004_with_a_regain_estimate(meta):
    meta.control("config", ad_account_call_budget=2, enforce_rate_limits=True)
    token = meta.mint(scopes=ADS)
    assert [meta.graph(f"/{ACCOUNT}/campaigns", token).status_code for _ in range(2)] == [200, 200]
    refused = meta.graph(f"/{ACCOUNT}/campaigns", token)
    err = _error(refused)
    assert err["code"] == 80004
    usage = json.loads(refused.headers["x-ad-account-usage"])
    assert usage["acc_id_util_pct"] == 100 and usage["reset_time_duration"] > 0
    buc = json.loads(refused.headers["x-business-use-case-usage"])[BUSINESS][0]
    assert buc["estimated_time_to_regain_access"] >= 1
    assert meta.graph(f"/{OTHER_ACCOUNT}/campaigns", token).status_code == 200  # per account
    meta.control("clock", advance_seconds=3601)
    assert meta.graph(f"/{ACCOUNT}/campaigns", token).status_code == 200


def test_marketing_objects_are_rebuilt_by_a_reset(meta):
    token = meta.mint(scopes=ADS)
    created = meta.graph(f"/{ACCOUNT}/campaigns", token, "POST", name="Gone after reset",
                         objective="OUTCOME_SALES", special_ad_categories="[]").json()["id"]
    meta.control("reset")
    token = meta.mint(scopes=ADS)
    err = _error(meta.graph(f"/{created}", token))
    assert err["code"] == 100
