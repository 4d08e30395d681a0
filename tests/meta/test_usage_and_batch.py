"""Meta's usage headers (crm_meta/meta/usage.py) and batch answers (crm_meta/meta/batch.py), read
in one place: what each says, and malformed input read as "nothing said" or as an error, never
as a crash."""

from __future__ import annotations

import json

import pytest

from crm_meta.meta import batch, usage
from crm_meta.meta.errors import GraphError, TokenInvalidError, TransientError


def buc(entries) -> dict:
    return {"x-business-use-case-usage": json.dumps({"2010000000000001": entries})}


def test_app_usage_is_the_highest_of_metas_three_percentages():
    headers = {"x-app-usage": json.dumps({"call_count": 12, "total_time": 85, "total_cputime": 40})}
    assert usage.app_usage(headers) == 85
    assert usage.app_usage({}) == 0
    assert usage.app_usage({"x-app-usage": "not json"}) == 0


def test_the_regain_time_is_the_longest_meta_announced_in_seconds():
    headers = buc([{"type": "ads_management", "estimated_time_to_regain_access": 3},
                   {"type": "ads_insights", "estimated_time_to_regain_access": 12}])
    assert usage.regain_seconds(headers) == 12 * 60
    assert usage.regain_seconds(buc([{"estimated_time_to_regain_access": 0}])) is None
    assert usage.regain_seconds({}) is None
    assert usage.regain_seconds({"x-business-use-case-usage": "{broken"}) is None


def test_a_business_entry_sent_as_an_object_reads_like_a_list_of_one():
    """The client's regain time and the governor's readings agree on the same header."""
    headers = buc({"call_count": 95, "estimated_time_to_regain_access": 4})
    assert usage.regain_seconds(headers) == 4 * 60
    assert usage.readings("/me", headers) == [("business:2010000000000001", 95.0, 240.0)]


def test_readings_name_the_app_the_business_and_the_ad_account_of_the_path():
    headers = {"x-app-usage": json.dumps({"call_count": 10}),
               "x-ad-account-usage": json.dumps({"acc_id_util_pct": 70, "reset_time_duration": 30}),
               **buc([{"call_count": 50}])}
    assert usage.readings("/act_301/campaigns", headers) == [
        ("app", 10.0, 0.0), ("business:2010000000000001", 50.0, 0.0), ("ad_account:act_301", 70.0, 30.0)]
    assert [scope for scope, *_ in usage.readings("/me", headers)] == ["app", "business:2010000000000001"]


def test_a_batch_body_lists_each_request_with_its_method():
    encoded = json.loads(batch.encode([{"relative_url": "me"}, {"method": "DELETE", "relative_url": "x"}]))
    assert encoded == [{"method": "GET", "relative_url": "me"}, {"method": "DELETE", "relative_url": "x"}]


def test_batch_answers_become_bodies_errors_or_none_to_ask_again():
    invalid = {"error": {"code": 190, "type": "OAuthException", "message": "expired"}}
    answers = [{"code": 200, "body": json.dumps({"id": "1"})}, None,
               {"code": 400, "body": json.dumps(invalid)}, {"code": 200, "body": "not json"},
               "a string where an object belongs"]
    ok, again, token_error, unreadable, odd = batch.decode(answers, expected=5)
    assert ok == {"id": "1"} and again is None
    assert isinstance(token_error, TokenInvalidError)
    assert isinstance(unreadable, GraphError) and isinstance(odd, GraphError)


@pytest.mark.parametrize("answers", [[{"code": 200, "body": "{}"}], {"not": "a list"}])
def test_a_batch_answer_of_the_wrong_length_is_transient(answers):
    with pytest.raises(TransientError):
        batch.decode(answers, expected=2)


# -- absurd numbers are clamped (review 2) -------------------------------------------------------
RAW = [  # header text as Meta's JSON could carry it (Python's json reads NaN and Infinity)
    '{"2010000000000001": [{"call_count": NaN, "estimated_time_to_regain_access": NaN}]}',
    '{"2010000000000001": [{"call_count": Infinity, "estimated_time_to_regain_access": Infinity}]}',
    '{"2010000000000001": [{"call_count": 50, "estimated_time_to_regain_access": 1e300}]}',
    '{"2010000000000001": [{"call_count": -5, "estimated_time_to_regain_access": -30}]}',
    '{"2010000000000001": [{"call_count": "NaN", "estimated_time_to_regain_access": "Infinity"}]}',
]


@pytest.mark.parametrize("raw", RAW)
def test_nan_infinity_and_absurd_regain_times_read_as_sane_numbers(raw):
    headers = {"x-business-use-case-usage": raw}
    seconds = usage.regain_seconds(headers)  # raised on NaN / Infinity before
    assert seconds is None or 0 < seconds <= usage.MAX_WAIT_SECONDS
    [(scope, percent, wait)] = usage.readings("/me", headers)
    assert 0 <= percent <= usage.MAX_PERCENT and 0 <= wait <= usage.MAX_WAIT_SECONDS
    assert percent == percent and wait == wait  # never NaN


@pytest.mark.parametrize("value, expected", [("NaN", 0), ("Infinity", 1000), ("-Infinity", 0),
                                             ("1e308", 1000), ("85", 85)])
def test_app_and_ad_account_usage_are_clamped(value, expected):
    assert usage.app_usage({"x-app-usage": f'{{"call_count": {value}}}'}) == expected
    headers = {"x-ad-account-usage": f'{{"acc_id_util_pct": {value}, "reset_time_duration": {value}}}'}
    [(_scope, percent, wait)] = usage.readings("/act_1/insights", headers)
    assert percent == expected and 0 <= wait <= usage.MAX_WAIT_SECONDS

