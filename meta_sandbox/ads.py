"""Campaigns, ad sets and ads read the way Meta serves them, with field expansion
(`insights.date_preset(last_7d){spend}`, `campaign{name}`, `adset{name}`, `ads.limit(5){name}`,
`.as(alias)`); `act_<id>/adsets` and `act_<id>/ads`; insights at the ad set and ad level (rows carry
`adset_id`, `ad_id` and their names); async insights: POST `act_<id>/insights` answers
`{"report_run_id"}`, the run's node its `async_status` and `async_percent_completion`, its
`/insights` the rows. Reached from the node dispatcher before marketing.py: PASS hands the call on.
"""

from __future__ import annotations

from typing import Any

from . import ads_data, insights, nodes
from . import marketing as mk
from . import marketing_data as data
from .errors import bad_param, unsupported
from .fields import FieldSpec, parse_fields

PASS = mk.PASS
EDGES = {"AdAccount": ("campaigns", "adsets", "ads"), "Campaign": ("adsets", "ads", "insights"),
         "AdSet": ("ads", "insights"), "Ad": ("insights",), "AdReportRun": ("insights",)}
PARENTS = {"AdSet": ("campaign",), "Ad": ("campaign", "adset")}
_INSIGHT_PARAMS = ("date_preset", "time_range", "time_increment", "level")
_IDS = {"Campaign": ("campaign_id", "campaign_name"), "AdSet": ("adset_id", "adset_name"),
        "Ad": ("ad_id", "ad_name")}


def dispatch(ctx, req, method: str, node_id: str, rest: list[str], usage) -> Any:
    """Answer the calls this module serves, or PASS."""
    if len(rest) > 1 or node_id == "me":
        return PASS
    edge = rest[0] if rest else ""
    sandbox = ctx.sandbox
    fixture = sandbox.fixtures.get(node_id)
    account_edges = (*EDGES["AdAccount"], "insights")
    if fixture is not None and (fixture["_type"] != "AdAccount" or edge not in account_edges):
        return PASS  # a user, business, page...: no marketing objects need building
    ads = ads_data.of(sandbox)
    obj = fixture or ads.state.objects.get(node_id)
    if obj is None or obj["_type"] not in EDGES:
        return PASS
    kind = obj["_type"]
    account = obj if kind == "AdAccount" else sandbox.fixtures.get(obj["_account_id"])
    level = req.params.get("level")
    lists = edge in EDGES[kind] and edge != "insights" or (not edge and kind != "AdAccount")
    rows = edge == "insights" and (kind in ("AdSet", "Ad", "AdReportRun") or level in ("adset", "ad"))
    ours = method == "GET" and (lists or rows)
    ours = ours or (method == "POST" and kind == "AdAccount" and edge == "insights")
    ours = ours or (method in ("POST", "DELETE") and kind in ("AdSet", "Ad") and not edge)
    if not ours:
        return PASS
    if account is None or not nodes.visible(ctx, account):
        raise unsupported(method, node_id)
    data.count_account(sandbox, ads.state, account, usage, edge or kind.lower())
    if method == "POST" and edge == "insights":
        return _report_run(ctx, ads, account, req.params)
    if method != "GET":
        return _update(ctx, obj, method, req.params)
    mk._require(ctx, mk.ADS_READ, mk.ADS_READ_ERROR)
    specs = parse_fields(req.params.get("fields"))
    if edge == "insights":
        params = dict(obj["_params"]) if kind == "AdReportRun" else req.params
        subject = account if kind == "AdReportRun" else obj
        rows = rows_for(ads, subject, account, params, ctx.now, params.get("fields"))
        return mk._page(ctx, req, rows, [str(i) for i in range(len(rows))], lambda row: row)
    if edge:
        items = mk._by_status(_items(ads, obj, edge), req.params.get("effective_status"))
        return mk._page(ctx, req, items, [i["id"] for i in items], lambda item: render(ctx, ads, item, specs))
    return render(ctx, ads, obj, specs)


def _items(ads: ads_data.Ads, parent: dict[str, Any], edge: str) -> list[dict[str, Any]]:
    if edge == "campaigns":
        return mk._account_campaigns(ads.state, parent)
    return ads_data.adsets_of(ads, parent) if edge == "adsets" else ads_data.ads_of(ads, parent)


def render(ctx, ads: ads_data.Ads, obj: dict[str, Any], specs: list[FieldSpec] | None) -> dict[str, Any]:
    """A campaign, ad set, ad or report run with its fields, expanded edges and parents."""
    kind = obj["_type"]
    fields = data.TYPE_FIELDS.get(kind) or ads_data.TYPE_FIELDS[kind]
    if specs is None:
        specs = [FieldSpec(name) for name in (data.DEFAULTS.get(kind) or ads_data.DEFAULTS[kind])]
    out: dict[str, Any] = {}
    for spec in specs:
        key = spec.modifiers.get("as") or spec.name
        if spec.name in EDGES.get(kind, ()):
            out[key] = _expanded(ctx, ads, obj, spec)
        elif spec.name in PARENTS.get(kind, ()):
            out[key] = render(ctx, ads, ads.state.objects[obj[f"_{spec.name}_id"]], spec.children)
        elif spec.name in fields and spec.children is None and set(spec.modifiers) <= {"as"}:
            if obj.get(spec.name) is not None:
                out[key] = obj[spec.name]
        else:
            raise bad_param(f"(#100) Tried accessing nonexisting field ({spec.name}) on node type ({kind})")
    out.setdefault("id", obj["id"])
    return out


def _expanded(ctx, ads: ads_data.Ads, obj: dict[str, Any], spec: FieldSpec) -> dict[str, Any]:
    """A nested edge: insights rows with the modifiers as parameters, or a page of objects."""
    account = ctx.sandbox.fixtures.get(obj["_account_id"])
    if spec.name == "insights":
        params = {k: v for k, v in spec.modifiers.items() if k in _INSIGHT_PARAMS}
        fields = ",".join(child.name for child in spec.children or []) or None
        subject = account if obj["_type"] == "AdReportRun" else obj
        return {"data": rows_for(ads, subject, account, params, ctx.now, fields)}
    items = [i for i in _items(ads, obj, spec.name) if i["effective_status"] != "DELETED"]
    limit = nodes.page_limit(ctx, spec.modifiers.get("limit"))
    result: dict[str, Any] = {"data": [render(ctx, ads, item, spec.children) for item in items[:limit]]}
    if items:
        chunk = items[:limit]
        paging = {"cursors": {"before": nodes.encode_cursor(chunk[0]["id"]),
                              "after": nodes.encode_cursor(chunk[-1]["id"])}}
        if len(items) > limit:
            link = nodes.nested_link(ctx, obj, spec.name, spec)
            paging["next"] = link([("limit", str(limit)), ("after", paging["cursors"]["after"])])
        result["paging"] = paging
    return result


def rows_for(ads, subject, account, params: dict[str, str], now, raw_fields: str | None) -> list[dict]:
    """Insights rows of a subject at the requested level; ids and names of each row's objects."""
    fields = insights.requested_fields(raw_fields)
    since, until = insights.date_range(params, now)
    spans = insights.buckets(since, until, params.get("time_increment"))
    levels = {"AdAccount": "account", "Campaign": "campaign", "AdSet": "adset", "Ad": "ad"}
    level = params.get("level") or levels[subject["_type"]]
    if level not in insights.LEVELS:
        raise bad_param("(#100) level must be one of the following values: " + ", ".join(insights.LEVELS))
    if level == levels[subject["_type"]]:
        subjects = [subject]
    elif level == "campaign":
        subjects = [c for c in mk._account_campaigns(ads.state, subject) if c["status"] == "ACTIVE"]
    elif level == "adset":
        subjects = [s for s in ads_data.adsets_of(ads, subject) if s["status"] == "ACTIVE"]
    else:
        subjects = [a for a in ads_data.ads_of(ads, subject) if a["status"] == "ACTIVE"]
    rows = []
    for item in subjects:
        chain = {item["_type"]: item}
        for parent in ("_adset_id", "_campaign_id"):
            if item.get(parent):
                found = ads.state.objects[item[parent]]
                chain[found["_type"]] = found
        for span in spans:
            row = insights.row(item, account, span, fields)
            for kind, (id_field, name_field) in _IDS.items():
                if kind in chain:
                    pairs = ((id_field, chain[kind]["id"]), (name_field, chain[kind]["name"]))
                    row.update({k: v for k, v in pairs if k in fields})
            rows.append(row)
    return rows


def _report_run(ctx, ads: ads_data.Ads, account: dict[str, Any], params: dict[str, str]) -> dict[str, str]:
    """POST act_<id>/insights: Meta answers the async job's id as `report_run_id`."""
    mk._require(ctx, mk.ADS_READ, mk.ADS_READ_ERROR)
    insights.requested_fields(params.get("fields"))  # refused now, as Meta refuses the job
    since, until = insights.date_range(params, ctx.now)
    kept = {k: v for k, v in params.items() if k in (*_INSIGHT_PARAMS, "fields")}
    run = ads_data.new_run(ads, account, kept, since, until, ctx.now)
    return {"report_run_id": run["id"]}


def _update(ctx, obj: dict[str, Any], method: str, params: dict[str, str]) -> dict[str, bool]:
    """POST updates an ad set's or ad's name and status; DELETE deletes it."""
    mk._require(ctx, mk.ADS_WRITE, mk.ADS_WRITE_ERROR)
    status = "DELETED" if method == "DELETE" else params.get("status", obj["status"])
    if status not in mk.STATUSES:
        raise bad_param("(#100) Param status must be one of {" + ", ".join(mk.STATUSES) + "}")
    obj["status"] = obj["configured_status"] = obj["effective_status"] = status
    if method == "POST" and params.get("name"):
        obj["name"] = params["name"][:400]
    obj["updated_time"] = ctx.now.strftime(data.TIME_FORMAT)
    return {"success": True}
