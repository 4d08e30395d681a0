"""Batch dependencies as Meta answers them (docs/meta-conformance.md rows B1..B8): named items,
`depends_on`, `{result=name:$.path}` references, omitted dependencies, failed parents."""

from __future__ import annotations

import json

from tests.sandbox.test_sandbox_fidelity import batch


def bodies(answers):
    return [None if a is None else (a["code"], json.loads(a["body"])) for a in answers]


def test_a_reference_takes_the_named_answers_values_and_the_dependency_is_omitted(meta):
    token = meta.login()
    items = [{"method": "GET", "name": "biz", "relative_url": "me/businesses?limit=2"},
             {"method": "GET", "relative_url": "{result=biz:$.data.1.id}?fields=name"},
             {"method": "GET", "relative_url": "{result=biz:$.data[0].id}?fields=name"}]
    answers = batch(meta, token, items).json()
    direct = meta.graph("/me/businesses", token, limit="2").json()["data"]
    assert answers[0] is None  # a successful dependency: omitted by default
    assert bodies(answers)[1] == (200, {"id": direct[1]["id"], "name": direct[1]["name"]})
    assert bodies(answers)[2][1]["id"] == direct[0]["id"]


def test_omit_response_on_success_false_returns_the_dependency(meta):
    token = meta.login()
    items = [{"method": "GET", "name": "biz", "relative_url": "me/businesses?limit=1",
              "omit_response_on_success": False},
             {"method": "GET", "depends_on": "biz", "relative_url": "me?fields=id"}]
    first, second = bodies(batch(meta, token, items).json())
    assert first[0] == 200 and len(first[1]["data"]) == 1
    assert second[0] == 200


def test_a_failed_parent_answers_its_error_and_its_dependents_null(meta):
    token = meta.login()
    items = [{"method": "GET", "name": "bad", "relative_url": "me/no_such_edge"},
             {"method": "GET", "depends_on": "bad", "relative_url": "me?fields=id"},
             {"method": "GET", "relative_url": "{result=bad:$.id}"},
             {"method": "GET", "relative_url": "me?fields=id"}]  # independent: runs
    answers = batch(meta, token, items).json()
    assert answers[0]["code"] >= 400 and "error" in json.loads(answers[0]["body"])
    assert answers[1] is None and answers[2] is None
    assert answers[3]["code"] == 200


def test_a_timed_out_parent_makes_its_dependents_null(meta):
    token = meta.login()
    meta.control("faults", path=f"/{meta.version}/me/businesses", batch_null=True, count=1)
    items = [{"method": "GET", "name": "biz", "relative_url": "me/businesses"},
             {"method": "GET", "relative_url": "{result=biz:$.data[0].id}"}]
    assert batch(meta, token, items).json() == [None, None]


def test_a_name_no_preceding_item_gives_refuses_the_whole_batch(meta):
    token = meta.login()
    for items in ([{"method": "GET", "relative_url": "{result=later:$.id}"},
                   {"method": "GET", "name": "later", "relative_url": "me"}],
                  [{"method": "GET", "depends_on": "nobody", "relative_url": "me"}]):
        refused = batch(meta, token, items)
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["type"] == "GraphBatchException"
        assert "Requests can only depend on preceding requests" in error["message"]


def test_cursor_pages_chain_inside_one_batch_and_a_reference_to_nothing_stops_the_chain(meta):
    meta.control("config", businesses=5)
    token = meta.login()
    first = meta.graph("/me/businesses", token, limit="2").json()
    items = [{"method": "GET", "name": "p1", "omit_response_on_success": False,
              "relative_url": f"me/businesses?limit=2&after={first['paging']['cursors']['after']}"}]
    for k in range(2, 5):
        after = f"{{result=p{k - 1}:$.paging.cursors.after}}"
        items.append({"method": "GET", "name": f"p{k}", "omit_response_on_success": False,
                      "relative_url": f"me/businesses?limit=2&after={after}"})
    answers = batch(meta, token, items).json()
    ids = [b["id"] for b in first["data"]]
    for answer in answers[:2]:
        ids += [b["id"] for b in json.loads(answer["body"])["data"]]
    everything = meta.graph("/me/businesses", token, limit="100").json()["data"]
    assert ids == [b["id"] for b in everything] and len(ids) == 5
    assert "next" not in json.loads(answers[1]["body"]).get("paging", {})
    # p3 asked past the end (no cursors): p4's reference resolves to nothing -> its own error.
    assert json.loads(answers[2]["body"])["data"] == []
    assert answers[3]["code"] == 400
