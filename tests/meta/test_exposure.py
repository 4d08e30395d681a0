"""The proxy's policy on its own: Graph's `fields` grammar, the typed allow-list, the stripping of
whatever token Meta's answer still holds (crm_meta/meta/fieldspec.py, exposure.py, scrub.py)."""

from __future__ import annotations

import json

import pytest

from crm_meta.meta import exposure, fieldspec, scrub
from crm_meta.meta.errors import ProxyRefused

TOKEN = "EAAG" + "x7Zq" * 30


@pytest.mark.parametrize(("text", "expected"), [
    ("id,name", {"id", "name"}),
    ("accounts.limit(1)", {"accounts"}),
    ("name.as(x),b.as(Y){c}", {"name", "x", "b", "y", "c"}),
    ("a{b{c{d.as(e)}}}", {"a", "b", "c", "d", "e"}),
    ('insights.time_range({"since":"2026-01-01","until":"2026-01-31"}).level(ad){spend,ad_id}',
     {"insights", "spend", "ad_id"}),
    ("insights.filtering([{'field':'x)','value':'}'}]){spend}", {"insights", "spend"}),
    (" id , name , ", {"id", "name"}),
])
def test_every_field_alias_and_subfield_is_read(text, expected):
    assert fieldspec.names(fieldspec.parse(text)) == expected


@pytest.mark.parametrize("text", ["a{", "a}", "a.limit(1", "a.limit", "a,,b", "a b", "a{b}}", "a.(1)",
                                  "a.x(])", "{a}", "a" + "{a" * 30 + "}" * 30, "x" * 9000])
def test_what_is_not_graphs_grammar_is_refused(text):
    with pytest.raises(fieldspec.FieldSyntaxError):
        fieldspec.parse(text)


def test_a_campaign_id_is_any_object_kind_and_a_discovered_id_its_own():
    known = exposure.Known(users=frozenset({"1"}), businesses=frozenset({"2"}), pages=frozenset({"3"}),
                           whatsapp_accounts=frozenset({"4"}))
    assert exposure.kinds_of("me", known) == ("user",)
    assert exposure.kinds_of("1", known) == ("user",)
    assert exposure.kinds_of("2", known) == ("business",)
    assert exposure.kinds_of("3", known) == ("page",)
    assert exposure.kinds_of("4", known) == ("whatsapp_account",)
    assert exposure.kinds_of("act_5", known) == ("ad_account",)
    assert exposure.kinds_of("5", known) == exposure.OBJECT_KINDS
    assert exposure.kinds_of("debug_token", known) == ()


def test_the_default_allow_list_reads_what_a_crm_reads_and_opens_no_token():
    allowed = exposure.allowed_from(exposure.DEFAULT_ALLOWED)
    known = exposure.Known(businesses=frozenset({"2"}), pages=frozenset({"3"}))
    for method, path in (("GET", "2/owned_ad_accounts"), ("GET", "2/client_ad_accounts"),
                         ("GET", "act_1/campaigns"), ("POST", "act_1/campaigns"), ("GET", "act_1/adsets"),
                         ("GET", "act_1/ads"), ("GET", "act_1/insights"), ("POST", "act_1/insights"),
                         ("GET", "9"), ("POST", "9"), ("DELETE", "9"), ("GET", "9/insights"),
                         ("GET", "9/leads"), ("GET", "3/leadgen_forms"), ("GET", "9/ads")):
        exposure.admit(method, path, [("fields", "name,insights.date_preset(last_7d){spend},"
                                                 "campaign{name},adset{name}")], known, allowed)
    assert not any(edge in exposure.TOKEN_EDGES for _kind, edge in exposure.CAPABILITIES)
    for method, path in (("GET", "2"), ("GET", "2/owned_pages"), ("DELETE", "3"), ("GET", "me"),
                         ("GET", "9/accounts"), ("GET", "act_1/users"), ("GET", "9/x/y")):
        with pytest.raises(ProxyRefused):
            exposure.admit(method, path, [], known, allowed)


def test_a_method_override_or_batch_never_passes():
    allowed = exposure.allowed_from(exposure.DEFAULT_ALLOWED)
    for params in ([("method", "delete")], [("batch", "[]")], [("ids", "1,2")], [("metadata", "1")]):
        with pytest.raises(ProxyRefused):
            exposure.admit("GET", "act_1/campaigns", params, exposure.Known(), allowed)
    exposure.admit("GET", "act_1/campaigns", [("method", "get")], exposure.Known(), allowed)


def test_tokens_are_stripped_at_any_depth_in_any_form():
    answer = {
        "data": [{"id": "1", "name": "Página", "access_token": TOKEN,
                  "nested": {"Page_Access_Token": TOKEN, "list": [TOKEN, "kept", {"x": f"Bearer {TOKEN}"}]}}],
        "alias": TOKEN,
        "app": "100000000000777|abcdefghijklmnopqrstuvwxyz",
        "metadata": {"connections": {"leads": f"https://graph.facebook.com/v25.0/1/leads?access_token={TOKEN}"
                                              "&appsecret_proof=ab&limit=5"}},
        "paging": {"cursors": {"after": "QVFIUjBEAAbcd"}, "next": "https://crm/x?limit=5&after=QVFI"},
    }
    out = scrub.body(json.dumps(answer).encode(), "application/json; charset=UTF-8")
    assert TOKEN.encode() not in out and b"abcdefghijklmnop" not in out and b"appsecret" not in out
    clean = json.loads(out)
    assert clean["data"][0] == {"id": "1", "name": "Página", "nested": {"list": ["kept", {}]}}
    assert clean["metadata"]["connections"]["leads"] == "https://graph.facebook.com/v25.0/1/leads?limit=5"
    assert clean["paging"] == answer["paging"] and "alias" not in clean and "app" not in clean


def test_an_answer_without_a_token_passes_byte_for_byte():
    raw = b'{"data": [{"id": "1", "name": "Caf\\u00e9"}],   "paging": {}}'
    assert scrub.body(raw, "application/json") == raw
    plain = b'{"id":"1","name":"x"}'
    assert scrub.body(plain, "application/json") is plain


def test_non_json_bodies_and_headers_lose_their_tokens():
    html = f"<a href='https://x/?access_token={TOKEN}&a=1'>{TOKEN}</a>".encode()
    assert TOKEN.encode() not in scrub.body(html, "text/html")
    headers = scrub.headers({"content-type": "application/json", "x-debug": f"token {TOKEN}",
                             "www-authenticate": 'OAuth "Facebook Platform" "invalid_token" "expired"'})
    assert set(headers) == {"content-type", "www-authenticate"}
    # Every shape a token takes in a header is still caught, whatever else the value holds.
    for value in (f"Bearer {TOKEN}", "100000000000777|abcdefghijklmnopqrstuvwxyz", "a=1&Access_Token=abc",
                  '{"call_count": 0}; appsecret_proof=ab'):
        assert scrub.headers({"x-any": value}) == {}, value
    usage = '{"2010000000000001": [{"type": "ads_management", "call_count": 0}]}'
    assert scrub.headers({"x-business-use-case-usage": usage}) == {"x-business-use-case-usage": usage}


def test_a_key_spelled_with_json_escapes_is_still_seen():
    raw = b'{"id": "1", "\\u0061ccess_\\u0074oken": "abc", "name": "Caf\\u00e9"}'
    assert json.loads(scrub.body(raw, "application/json")) == {"id": "1", "name": "Café"}


def test_a_fields_value_read_once_is_judged_the_same_every_time():
    """`fields` values are parsed once and kept: a refused one stays refused, whether it names a
    token or does not parse, and an allowed one stays allowed."""
    for _ in range(3):
        exposure.check_params("GET", [("fields", "name,status{effective_status}")])
        for refused in ("name,owned_pages{access_token}", "name{", "name.as(x"):
            with pytest.raises(ProxyRefused):
                exposure.check_params("GET", [("fields", refused)])
