"""Marketing nodes: an ad account's campaigns and insights, a page's lead forms and their leads.

Reached from the node dispatcher through `dispatch`, which answers the calls it knows and
returns PASS for everything else. Objects are generated per fixture set (deterministic from
the seed) and live until the next reset; campaigns created with POST join them. Every call
that names an ad account counts against that account's hourly budget, reported in
`x-ad-account-usage` (and, with enforce_rate_limits, refused with 80004 once spent).
Shapes and field names from Meta's Marketing API reference (Campaign, AdsInsights,
LeadgenForm, Lead).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from . import insights, nodes
from . import marketing_data as data
from .errors import GraphRefusal, bad_param, unsupported
from .fields import parse_fields

PASS = object()  # "not a marketing call": the generic node routing goes on
# Methods: the edges and nodes here refuse what Meta refuses with `unsupported` (100/33), as the
# generic routing does from schema.Edge.methods: POST only on act_<id>/campaigns and a campaign.

ADS_READ = (("ads_management", "ads_read"),)
ADS_WRITE = (("ads_management",),)
ADS_READ_ERROR = ("(#200) Ad account owner has NOT grant ads_management or ads_read permission", 200)
ADS_WRITE_ERROR = ("(#200) Requires ads_management permission to manage the object", 200)
FORMS = (("pages_manage_ads",), ("pages_show_list", "pages_read_engagement"))
FORMS_ERROR = ("(#200) Requires pages_manage_ads permission to manage the object", 200)
LEADS = (("leads_retrieval",), ("pages_show_list", "pages_read_engagement"))
LEADS_ERROR = ("(#200) Requires leads_retrieval permission to manage the object", 200)
STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED")
SPECIAL_AD_CATEGORIES = ("NONE", "EMPLOYMENT", "HOUSING", "CREDIT", "ISSUES_ELECTIONS_POLITICS",
                         "FINANCIAL_PRODUCTS_SERVICES")
# Edges this module adds to the fixtures' own node types.
_PARENT_EDGES = frozenset(key for key in data.SERVED_EDGES if key[0] in ("AdAccount", "Page"))


# -- routing ----------------------------------------------------------------------------------
def dispatch(ctx, req, method: str, node_id: str, rest: list[str], usage) -> Any:
    """Answer a marketing call, or return PASS for the generic node routing."""
    sandbox = ctx.sandbox
    edge = rest[0] if len(rest) == 1 else ""
    if len(rest) > 1 or node_id == "me":
        return PASS
    parent = sandbox.fixtures.get(node_id)
    if parent is not None:
        kind = parent["_type"]
        if (kind, edge) not in _PARENT_EDGES:
            return PASS
        state = data.state(sandbox)
        if kind == "AdAccount":
            _visible_or_refuse(ctx, method, parent)
            data.count_account(sandbox, state, parent, usage, edge)
            if edge == "campaigns":
                return _create_campaign(ctx, state, parent, req.params) if method == "POST" \
                    else _list(ctx, req, _account_campaigns(state, parent), "Campaign", ADS_READ,
                               ADS_READ_ERROR, method)
            return _insights(ctx, req, method, parent, state)
        _visible_or_refuse(ctx, method, parent)
        usage.use_case = "pages"
        forms = [state.objects[i] for i in state.forms.get(parent["id"], [])]
        return _list(ctx, req, forms, "LeadgenForm", FORMS, FORMS_ERROR, method)
    state = data.state(sandbox)
    obj = state.objects.get(node_id)
    if obj is None:
        return PASS
    if not _visible(ctx, state, obj):
        raise unsupported(method, node_id)
    kind = obj["_type"]
    if kind == "Campaign":
        account = sandbox.fixtures.get(obj["_account_id"])
        data.count_account(sandbox, state, account, usage, edge or "campaign")
        if edge == "insights":
            return _insights(ctx, req, method, obj, state, account)
        if edge:
            raise bad_param(f"(#100) Tried accessing nonexisting field ({edge}) on node type (Campaign)")
        return _campaign_node(ctx, req, method, obj)
    usage.use_case = "pages"
    if kind == "LeadgenForm" and edge == "leads":
        leads = _filtered([state.objects[i] for i in state.leads.get(obj["id"], [])], req.params)
        return _list(ctx, req, leads, "Lead", LEADS, LEADS_ERROR, method)
    if edge:
        raise bad_param(f"(#100) Tried accessing nonexisting field ({edge}) on node type ({kind})")
    if method != "GET":
        raise unsupported(method, node_id)
    needs, error = (FORMS, FORMS_ERROR) if kind == "LeadgenForm" else (LEADS, LEADS_ERROR)
    _require(ctx, needs, error)
    return render(obj, req.params.get("fields"))


def _visible_or_refuse(ctx, method: str, parent: dict[str, Any]) -> None:
    if not nodes.visible(ctx, parent):
        raise unsupported(method, parent["id"])


def _visible(ctx, state: data.State, obj: dict[str, Any]) -> bool:
    """Campaigns through their ad account; forms and leads through their page."""
    if obj["_type"] == "Campaign":
        account = ctx.sandbox.fixtures.get(obj["_account_id"])
        return account is not None and nodes.visible(ctx, account)
    page = ctx.sandbox.fixtures.get(obj["_page_id"])
    return page is not None and nodes.visible(ctx, page)


def _require(ctx, needs, error) -> None:
    if needs is LEADS and ctx.sandbox.config["leads_access_blocked"]:  # the Leads Access Manager
        raise GraphRefusal(*data.LEADS_BLOCKED)
    if ctx.token.kind != "PAGE":  # a page token speaks for its own page
        ctx.require(needs, error)


# -- campaigns -------------------------------------------------------------------------------
def _account_campaigns(state: data.State, account: dict[str, Any]) -> list[dict[str, Any]]:
    # Meta leaves deleted campaigns out of the edge unless asked for by effective_status.
    return [state.objects[i] for i in state.campaigns.get(account["id"], [])]


def _create_campaign(ctx, state: data.State, account: dict[str, Any], params: dict[str, str]) -> dict:
    """POST act_<id>/campaigns: name, objective, special_ad_categories; answers {"id"}."""
    _require(ctx, ADS_WRITE, ADS_WRITE_ERROR)
    for name in ("name", "objective", "special_ad_categories"):
        if not params.get(name):
            raise bad_param(f"(#100) The parameter {name} is required")
    if params["objective"] not in data.OBJECTIVES:
        raise bad_param("(#100) Param objective must be one of {" + ", ".join(data.OBJECTIVES) + "}")
    categories = _categories(params["special_ad_categories"])
    status = params.get("status") or "ACTIVE"
    if status not in ("ACTIVE", "PAUSED"):
        raise bad_param("(#100) Param status must be one of {ACTIVE, PAUSED}")
    budget = _budget(params.get("daily_budget"))
    state.next_id += 1
    campaign = data.campaign(str(state.next_id), account, params["name"][:400], params["objective"], status,
                         budget, ctx.now)
    campaign["special_ad_categories"] = categories
    state.campaigns.setdefault(account["id"], []).append(data.add(state, campaign))
    return {"id": campaign["id"]}


def _categories(raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = [raw]
    if not isinstance(value, list) or any(v not in SPECIAL_AD_CATEGORIES for v in value):
        raise bad_param("(#100) Param special_ad_categories[0] must be one of {"
                        + ", ".join(SPECIAL_AD_CATEGORIES) + "}")
    return [v for v in value if v != "NONE"]


def _budget(raw: str | None) -> str | None:
    if raw in (None, ""):
        return None
    if not str(raw).isdigit() or int(raw) < 100:
        raise bad_param("(#100) Param daily_budget must be a positive amount in the account's "
                        "minor currency unit")
    return str(int(raw))


def _campaign_node(ctx, req, method: str, obj: dict[str, Any]) -> dict:
    """GET reads; POST updates name/status/budgets ({"success": true}); DELETE deletes."""
    if method == "GET":
        _require(ctx, ADS_READ, ADS_READ_ERROR)
        return render(obj, req.params.get("fields"))
    _require(ctx, ADS_WRITE, ADS_WRITE_ERROR)
    if method == "DELETE":
        obj["status"] = obj["configured_status"] = obj["effective_status"] = "DELETED"
    else:
        params = req.params
        if "status" in params:
            if params["status"] not in STATUSES:
                raise bad_param("(#100) Param status must be one of {" + ", ".join(STATUSES) + "}")
            obj["status"] = obj["configured_status"] = obj["effective_status"] = params["status"]
        if params.get("name"):
            obj["name"] = params["name"][:400]
        if "daily_budget" in params:
            obj["daily_budget"] = _budget(params["daily_budget"])
    obj["updated_time"] = ctx.now.strftime(data.TIME_FORMAT)
    return {"success": True}


# -- insights --------------------------------------------------------------------------------
def _insights(ctx, req, method: str, subject: dict[str, Any], state: data.State,
              account: dict[str, Any] | None = None) -> dict:
    """{"data": [rows], "paging"} for an ad account or a campaign; date_preset, fields, level."""
    if method != "GET":
        raise unsupported(method, subject["id"])
    _require(ctx, ADS_READ, ADS_READ_ERROR)
    params = req.params
    fields = insights.requested_fields(params.get("fields"))
    since, until = insights.date_range(params, ctx.now)
    spans = insights.buckets(since, until, params.get("time_increment"))
    account = account or subject
    level = params.get("level") or ("account" if subject["_type"] == "AdAccount" else "campaign")
    if level not in insights.LEVELS:
        raise bad_param("(#100) level must be one of the following values: " + ", ".join(insights.LEVELS))
    if level == "campaign" and subject["_type"] == "AdAccount":
        subjects = [c for c in _account_campaigns(state, account) if c["status"] == "ACTIVE"]
    elif level in ("adset", "ad"):
        subjects = []  # the sandbox's campaigns have no ad sets or ads
    else:
        subjects = [subject]
    rows = [insights.row(s, account, span, fields) for s in subjects for span in spans]
    return _page(ctx, req, rows, [str(i) for i in range(len(rows))], lambda item: item)


# -- lists, paging, rendering ----------------------------------------------------------------
def _list(ctx, req, items, type_name: str, needs, error, method: str) -> dict:
    if method != "GET":
        raise unsupported(method, req.path.rsplit("/", 2)[-2])
    _require(ctx, needs, error)
    if type_name == "Campaign":
        items = _by_status(items, req.params.get("effective_status"))
    raw = req.params.get("fields")
    return _page(ctx, req, items, [item["id"] for item in items], lambda item: render(item, raw))


def _by_status(items: list[dict], raw: str | None) -> list[dict]:
    if not raw:
        return [item for item in items if item["effective_status"] != "DELETED"]
    try:
        wanted = json.loads(raw)
    except ValueError:
        wanted = None
    if not isinstance(wanted, list):
        raise bad_param("(#100) Param effective_status must be a JSON array")
    return [item for item in items if item["effective_status"] in wanted]


def _filtered(leads: list[dict], params: dict[str, str]) -> list[dict]:
    """The `filtering` param on time_created (GREATER_THAN / LESS_THAN a unix time)."""
    raw = params.get("filtering")
    if not raw:
        return leads
    try:
        rules = json.loads(raw)
        checks = [(r["field"], r["operator"], int(r["value"])) for r in rules]
    except (ValueError, TypeError, KeyError):
        raise bad_param("(#100) Param filtering must be a JSON array of {field, operator, value}") from None
    result = leads
    for name, operator, value in checks:
        if name != "time_created" or operator not in ("GREATER_THAN", "LESS_THAN"):
            raise bad_param(f"(#100) Filtering field {name} with operation {operator} is not supported")
        def stamp(lead):
            return datetime.strptime(lead["created_time"], data.TIME_FORMAT).timestamp()
        result = [lead for lead in result
                  if (stamp(lead) > value if operator == "GREATER_THAN" else stamp(lead) < value)]
    return result


def _page(ctx, req, items: list, ids: list[str], render_item) -> dict:
    """Meta's cursor paging over `items` (cursors point at `ids`), like the generic edges."""
    params = req.params
    limit = nodes.page_limit(ctx, params.get("limit"))
    kept = [(k, v) for k, v in req.query if k not in ("after", "before", "limit")]

    def link(extra):
        return ctx.link(req.path, kept + [("limit", str(limit)), *extra])

    if params.get("after"):
        start = nodes._decode_cursor(params["after"], ids) + 1
    elif params.get("before"):
        start = max(0, nodes._decode_cursor(params["before"], ids) - limit)
    else:
        start = 0
        if items and ctx.sandbox.config["empty_first_page"]:  # Meta's empty first page quirk
            marker = nodes.encode_cursor(nodes._START)
            return {"data": [], "paging": {"cursors": {"before": marker, "after": marker},
                                           "next": link([("after", marker)])}}
    chunk, chunk_ids = items[start:start + limit], ids[start:start + limit]
    result: dict[str, Any] = {"data": [render_item(item) for item in chunk]}
    if chunk:
        first, last = nodes.encode_cursor(chunk_ids[0]), nodes.encode_cursor(chunk_ids[-1])
        paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
        if start > 0:
            paging["previous"] = link([("before", first)])
        if start + limit < len(items):
            paging["next"] = link([("after", last)])
        result["paging"] = paging
    if params.get("summary", "").lower() in ("true", "1", "total_count"):
        result["summary"] = {"total_count": len(items)}
    return result


def render(obj: dict[str, Any], raw_fields: str | None) -> dict[str, Any]:
    """The requested (or default) flat fields of a Campaign, LeadgenForm or Lead."""
    kind = obj["_type"]
    specs = parse_fields(raw_fields)
    names = list(data.DEFAULTS[kind]) if specs is None else []
    for spec in specs or []:
        if spec.name not in data.TYPE_FIELDS[kind] or spec.children is not None or spec.modifiers:
            raise bad_param(f"(#100) Tried accessing nonexisting field ({spec.name}) on node type ({kind})")
        names.append(spec.name)
    out = {name: obj[name] for name in names if obj.get(name) is not None}
    out.setdefault("id", obj["id"])
    return out
