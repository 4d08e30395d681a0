"""Meta's manners: versions, usage headers, error bodies; plus parser and fixture units."""

from __future__ import annotations

import json

import pytest

from meta_sandbox.config import DEFAULTS
from meta_sandbox.errors import GraphRefusal
from meta_sandbox.fields import parse_fields
from meta_sandbox.fixtures import build_fixtures


@pytest.mark.parametrize("version", ["v21.0", "v22.0", "v23.0", "v24.0", "v25.0", "v26.0"])
def test_current_versions_are_served_as_asked(meta, version):
    response = meta.graph("/me", meta.login(), version=version)
    assert response.status_code == 200
    assert response.headers["facebook-api-version"] == version


@pytest.mark.parametrize("version", ["v19.0", "v20.0", "v2.8"])
def test_retired_versions_silently_run_on_the_oldest_usable_one(meta, version):
    response = meta.graph("/me", meta.login(), version=version)
    assert response.status_code == 200
    assert response.headers["facebook-api-version"] == "v21.0"


@pytest.mark.parametrize("version", ["v99.0", "v27.0", "latest"])
def test_unknown_versions_get_a_meta_shaped_error(meta, version):
    response = meta.graph("/me", meta.login(), version=version)
    assert response.status_code == 400
    error = response.json()["error"]
    assert {"message", "type", "code", "fbtrace_id", "is_transient"} <= set(error)
    assert error["code"] in (100, 2500)


def test_unversioned_calls_use_the_default_version(meta):
    token = meta.login()
    response = meta.http.get(
        f"{meta.url}/me", params={"access_token": token, "appsecret_proof": meta.proof(token)}
    )
    assert response.status_code == 200
    assert response.headers["facebook-api-version"] == "v25.0"


def test_every_response_carries_usage_and_version_headers(meta):
    meta.control("config", app_call_budget=10)
    token = meta.login()
    usage = None
    for _ in range(3):
        response = meta.graph("/me", token)
        usage = json.loads(response.headers["x-app-usage"])
    assert set(usage) == {"call_count", "total_time", "total_cputime"}
    assert usage["call_count"] >= 30
    failed = meta.graph("/me", "EAAbogus")
    assert failed.status_code == 400
    assert "x-app-usage" in failed.headers and failed.headers["facebook-api-version"] == "v25.0"


def test_usage_window_is_one_hour_of_sandbox_time(meta):
    meta.control("config", app_call_budget=10)
    token = meta.login()
    for _ in range(4):
        meta.graph("/me", token)
    meta.control("clock", advance_seconds=3601)
    assert json.loads(meta.graph("/me", token).headers["x-app-usage"])["call_count"] == 10


def test_business_calls_carry_business_use_case_usage(meta):
    token = meta.login()
    response = meta.graph("/2010000000000001/owned_ad_accounts", token)
    usage = json.loads(response.headers["x-business-use-case-usage"])
    entry = usage["2010000000000001"][0]
    assert entry["type"] == "ads_management"
    assert {"call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"} <= set(entry)
    assert "x-business-use-case-usage" not in meta.graph("/me", token).headers


def test_ad_account_node_carries_ad_account_usage(meta):
    token = meta.login()
    response = meta.graph("/act_301000001000001", token, fields="name")
    assert "acc_id_util_pct" in json.loads(response.headers["x-ad-account-usage"])


def test_token_errors_carry_www_authenticate(meta):
    response = meta.graph("/me", "EAAunknown")
    assert response.headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')
    err = response.json()["error"]
    assert (err["code"], err["error_subcode"], err["type"]) == (190, 467, "OAuthException")


def test_enforced_rate_limit_answers_code_4(meta):
    meta.control("config", app_call_budget=3, enforce_rate_limits=True)
    token = meta.login()
    codes = [meta.graph("/me", token).status_code for _ in range(4)]
    assert codes[:2] == [200, 200]
    last = meta.graph("/me", token)
    assert last.json()["error"]["code"] == 4
    assert json.loads(last.headers["x-app-usage"])["call_count"] == 100


def test_fields_parser_handles_nesting_modifiers_and_errors():
    specs = parse_fields(" id, name ,edge.limit(5).after(QQ){a,b{c}}, other{x} ")
    assert [s.name for s in specs] == ["id", "name", "edge", "other"]
    assert specs[2].modifiers == {"limit": "5", "after": "QQ"}
    assert specs[2].children_raw == "a,b{c}"
    assert specs[2].children[1].children[0].name == "c"
    assert parse_fields("") is None
    for bad in ("id,{x}", "edge{a", "edge.limit(5", "a b"):
        with pytest.raises(GraphRefusal) as caught:
            parse_fields(bad)
        assert caught.value.code == 100


def test_fixtures_are_deterministic_and_sized_by_config():
    one = build_fixtures(DEFAULTS)
    two = build_fixtures(DEFAULTS)
    assert one.objects == two.objects
    other = build_fixtures({**DEFAULTS, "seed": 7})
    assert other.objects != one.objects
    sized = build_fixtures({**DEFAULTS, "businesses": 5, "ad_accounts_per_business": 2})
    assert len(sized.access("10160000000000001")["businesses"]) == 5
    first = sized.objects["2010000000000001"]
    assert len(first["_owned_ad_accounts"]) == 2
