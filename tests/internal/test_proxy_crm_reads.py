"""The default allow-list covers what a CRM's marketing and lead services read (issue 19, item 8),
with a `graph:proxy`-only key: businesses' ad accounts; an account's campaigns, ad sets, ads and
insights (sync and async report runs); campaign and ad nodes with field expansion; lead forms and
leads. No answer carries a token."""

from __future__ import annotations

import pytest

from tests.helpers.sandbox import ACCOUNT, BUSINESS
from tests.internal.tokens import PROXY, tokens_in

PAGE = "1090000000000001"
SCOPES = ["ads_management", "business_management", "whatsapp_business_management", "pages_show_list",
          "pages_read_engagement", "read_insights", "pages_manage_ads", "leads_retrieval"]


@pytest.fixture
def crm(make_app, connect, make_key):
    app = make_app(META_SCOPES=SCOPES)
    connect("acme", app_=app)
    key = make_key("marketing", scopes=("graph:proxy",), app_=app)
    client = app.test_client()

    def call(path: str, method: str = "GET", **params):
        if method == "GET":
            response = client.get(PROXY.format("acme", path), headers=key.headers, query_string=params)
        else:
            response = client.open(PROXY.format("acme", path), method=method, headers=key.headers,
                                   data=params)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        assert not tokens_in(response)
        return response.get_json()

    return call


def test_a_marketing_service_reads_accounts_campaigns_ads_and_insights(crm):
    owned = crm(f"{BUSINESS}/owned_ad_accounts", fields="id,name,account_status,currency")["data"]
    assert ACCOUNT in {a["id"] for a in owned}
    crm(f"{BUSINESS}/client_ad_accounts", fields="id,name")
    campaigns = crm(f"{ACCOUNT}/campaigns",
                    fields="name,status,daily_budget,insights.date_preset(last_7d){spend,impressions,clicks}")
    assert campaigns["data"][0]["insights"]["data"][0]["spend"]
    adsets = crm(f"{ACCOUNT}/adsets", fields="name,campaign_id,status")["data"]
    ads = crm(f"{ACCOUNT}/ads", fields="name,status,campaign{name},adset{name}")["data"]
    assert ads[0]["campaign"]["name"] and ads[0]["adset"]["id"] in {s["id"] for s in adsets}
    campaign = crm(campaigns["data"][0]["id"], fields="name,objective,adsets{name},ads.limit(1){name}")
    assert campaign["adsets"]["data"] and len(campaign["ads"]["data"]) == 1
    crm(f"{ads[0]['id']}/insights", fields="ad_id,spend", date_preset="last_7d")
    rows = crm(f"{ACCOUNT}/insights", level="ad", fields="ad_id,ad_name,campaign_id,spend")["data"]
    assert rows and rows[0]["ad_id"]


def test_async_insights_through_the_proxy(crm):
    run = crm(f"{ACCOUNT}/insights", "POST", level="campaign", date_preset="last_30d",
              fields="campaign_id,campaign_name,spend")["report_run_id"]
    status = crm(run, fields="async_status,async_percent_completion")
    assert status["async_status"] == "Job Completed" and status["async_percent_completion"] == 100
    rows = crm(f"{run}/insights")["data"]
    assert rows and {"campaign_id", "campaign_name", "spend"} <= set(rows[0])


def test_a_leads_service_reads_forms_and_leads_with_their_ads(crm):
    forms = crm(f"{PAGE}/leadgen_forms", fields="id,name,status,leads_count")["data"]
    leads = crm(f"{forms[0]['id']}/leads",
                fields="created_time,field_data,form_id,ad_id,adset_id,campaign_id")
    paid = [lead for lead in leads["data"] if "ad_id" in lead]
    assert paid and paid[0]["campaign_id"]
    lead = crm(paid[0]["id"], fields="field_data,ad_id,form_id")
    assert lead["form_id"] == forms[0]["id"]
