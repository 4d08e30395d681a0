"""Meta's official Python SDK (facebook-business) through the gateway, as it is: only its Graph
base URL and its token changed. It sees what it sees calling Meta (the sandbox) with the
tenant's real token, and it backs off from the gateway's throttle as from Meta's."""

from __future__ import annotations

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.campaign import Campaign
from facebook_business.adobjects.leadgenform import LeadgenForm
from facebook_business.adobjects.page import Page
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError

from config import DEFAULT_SCOPES
from tests.helpers.graph import sdk
from tests.helpers.sandbox import ACCOUNT
from tests.helpers.settings import APP_SECRET

PAGE = "1090000000000001"
LEAD_SCOPES = DEFAULT_SCOPES.split(",") + ["pages_manage_ads", "leads_retrieval"]
THROTTLE_CODES = {4, 17, 32, 613, *range(80000, 80015)}  # Meta's rate-limit codes


@pytest.fixture
def app(make_app):
    return make_app(META_SCOPES=LEAD_SCOPES)  # a leads service's scopes (README)


@pytest.fixture
def apis(app, live, connect, gateway_token, stored_token, sandbox):
    """(through the gateway, straight to Meta with the real token) for tenant acme."""
    acme = connect("acme")
    return (sdk(live.graph, gateway_token("acme")),
            sdk(sandbox.url, stored_token(app, acme.tenant_id), app_secret=APP_SECRET))


def read_everything(api: FacebookAdsApi) -> dict:
    account = AdAccount(ACCOUNT, api=api)
    campaigns = account.get_campaigns(fields=["name", "status", "objective"], params={"limit": 2})
    pages = []
    for campaign in campaigns:  # the SDK pages with cursors, one call per page
        pages.append(campaign.export_all_data())
    insights = account.get_insights(fields=["spend", "impressions", "date_start"],
                                    params={"date_preset": "last_14d", "time_increment": 1, "limit": 5})
    forms = Page(PAGE, api=api).get_lead_gen_forms(fields=["name", "status"])
    form_rows = [form.export_all_data() for form in forms]
    leads = [lead.export_all_data() for lead in LeadgenForm(form_rows[0]["id"], api=api).get_leads(
        fields=["created_time", "field_data"])]
    return {"account": account.api_get(fields=["name", "account_status", "currency"]).export_all_data(),
            "campaigns": pages, "insights": [row.export_all_data() for row in insights],
            "forms": form_rows, "leads": leads}


def test_the_sdk_sees_through_the_gateway_what_it_sees_at_meta(apis, sandbox):
    gateway, meta = apis
    through = read_everything(gateway)
    assert len(through["campaigns"]) == 3 and len(through["insights"]) == 14
    assert through["forms"] and through["leads"] and through["account"]["id"] == ACCOUNT
    assert through == read_everything(meta)
    # Campaigns came page by page (limit 2): two calls through the gateway for them.
    assert len([c for c in sandbox.calls(f"{ACCOUNT}/campaigns")]) >= 4


def test_the_sdk_creates_and_deletes_a_campaign_through_the_gateway(apis):
    gateway, meta = apis
    created = AdAccount(ACCOUNT, api=gateway).create_campaign(params={
        "name": "Leads de invierno", "objective": "OUTCOME_LEADS", "status": "PAUSED",
        "special_ad_categories": []})
    seen = Campaign(created["id"], api=meta).api_get(fields=["name", "status"])
    assert seen["name"] == "Leads de invierno" and seen["status"] == "PAUSED"
    Campaign(created["id"], api=gateway).api_delete()
    assert Campaign(created["id"], api=meta).api_get(fields=["status"])["status"] == "DELETED"


def test_the_sdk_reads_the_gateways_refusals_as_metas(apis, live, sandbox):
    gateway, _ = apis
    with pytest.raises(FacebookRequestError) as refused:
        Page(PAGE, api=gateway).api_get(fields=["name", "access_token"])
    assert refused.value.api_error_code() in (10, 100) and not refused.value.api_transient_error()
    with pytest.raises(FacebookRequestError) as bad:
        AdAccount(ACCOUNT, api=sdk(live.graph, "cmg_" + "x" * 43)).api_get(fields=["name"])
    assert bad.value.api_error_code() == 190 and bad.value.http_status() == 401


def test_the_sdk_backs_off_from_the_gateways_throttle(apis, sandbox):
    """Code written for Meta: on a transient error, wait what Meta says (Retry-After), then retry.
    Waiting here is moving the sandbox's clock, which the gateway's holds follow."""
    gateway, _ = apis
    account = AdAccount(ACCOUNT, api=gateway)
    sandbox.fault(f"/v25.0/{ACCOUNT}", code=80004, regain_minutes=5)  # Meta throttles the account
    waits = []

    def with_backoff(call):
        for _ in range(5):
            try:
                return call()
            except FacebookRequestError as exc:
                if not exc.api_transient_error() and exc.api_error_code() not in THROTTLE_CODES:
                    raise
                waits.append((exc.api_error_code(), exc.api_transient_error(),
                              int(exc.http_headers().get("Retry-After", 60))))
                if exc.api_error_code() != 80004:
                    sandbox.advance(waits[-1][2] + 1)  # Meta's own: the client retries at once
        raise AssertionError("never got through")

    assert with_backoff(lambda: account.api_get(fields=["name"]))["id"] == ACCOUNT
    # Meta's own 80004 (passed through), then the gateway's hold: transient, with Meta's wait;
    # after waiting it, the call goes through.
    assert [code for code, _, _ in waits] == [80004, 613]
    _, transient, wait = waits[1]
    assert transient is True and 290 <= wait <= 300


def test_the_sdk_runs_ads_and_async_insights_through_the_gateway(apis):
    """Ads, and an async insights job (POST act_<id>/insights, its report
    run polled, its result read), through the gateway and at Meta alike."""
    def read(api):
        account = AdAccount(ACCOUNT, api=api)
        ads = [ad.export_all_data() for ad in account.get_ads(fields=["name", "campaign_id", "adset_id"])]
        job = account.get_insights_async(fields=["ad_id", "spend"], params={"level": "ad",
                                                                           "date_preset": "last_7d"})
        for _ in range(20):  # Meta's report runs are polled until done
            status = job.api_get(fields=["async_status", "async_percent_completion"])
            if status["async_status"] == "Job Completed":
                break
        rows = sorted((row["ad_id"], row["spend"]) for row in job.get_result())
        return ads, status["async_status"], rows

    gateway, meta = apis
    ads, status, rows = read(gateway)
    assert ads and all(ad["campaign_id"] and ad["adset_id"] for ad in ads)
    assert status == "Job Completed" and rows
    at_meta = read(meta)
    assert (ads, rows) == (at_meta[0], at_meta[2])


def sdk_batch(api: FacebookAdsApi, extra=()) -> list:
    """What Meta's SDK hands its callbacks for one batch: a campaign list, the account, extras."""
    got = []

    def ok(response):
        got.append(("ok", response.status(), {k: v for k, v in response.json().items() if k != "paging"}))

    def failed(response):
        error = response.error()
        got.append(("error", response.status(), error.api_error_code(), error.api_error_type()))

    batch = api.new_batch()
    account = AdAccount(ACCOUNT, api=api)
    account.get_campaigns(fields=["name", "status"], params={"limit": 2}, batch=batch,
                          success=ok, failure=failed)
    account.api_get(fields=["name", "currency"], batch=batch, success=ok, failure=failed)
    for method, path in extra:
        batch.add(method, path, success=ok, failure=failed)
    assert batch.execute() is None  # no item to retry
    return got


def test_the_sdks_batch_sees_through_the_gateway_what_it_sees_at_meta(apis):
    """`FacebookAdsApi.new_batch()` through the gateway (issue 19): each item as a lone call."""
    through, meta = apis
    assert sdk_batch(through) == sdk_batch(meta)
    assert [kind for kind, *_ in sdk_batch(through)] == ["ok", "ok"]
    # A refused item fails alone, classified by the SDK as Meta's permission error.
    mixed = sdk_batch(through, extra=[("GET", ("me", "accounts"))])
    assert mixed[:2] == sdk_batch(meta) and mixed[2] == ("error", 403, 10, "OAuthException")
