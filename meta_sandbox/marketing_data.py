"""The marketing objects of one fixture set: campaigns per ad account, lead forms per page,
leads per form, and each ad account's call window (x-ad-account-usage)."""

from __future__ import annotations

import json
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .errors import GraphRefusal

OBJECTIVES = ("OUTCOME_APP_PROMOTION", "OUTCOME_AWARENESS", "OUTCOME_ENGAGEMENT", "OUTCOME_LEADS",
              "OUTCOME_SALES", "OUTCOME_TRAFFIC")
THROTTLED_80004 = ("(#80004) There have been too many calls to this ad-account. Wait a bit and try "
                   "again. For more info, please refer to "
                   "https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"
# A Page's Leads Access Manager keeping this user out: Meta documents no error of its own; a
# permission error (code 200) naming lead access is our inference (docs/meta-conformance.md W9).
LEADS_BLOCKED = ("(#200) The user does not have leads access on this Page (Leads Access Manager)", 200)
# Fields each type serves (Meta's Campaign, LeadgenForm and Lead references) and its defaults.
CAMPAIGN_FIELDS = frozenset({
    "id", "account_id", "name", "objective", "status", "configured_status", "effective_status",
    "buying_type", "daily_budget", "lifetime_budget", "budget_remaining", "bid_strategy",
    "special_ad_categories", "spend_cap", "created_time", "updated_time", "start_time", "stop_time",
})
FORM_FIELDS = frozenset({"id", "name", "status", "locale", "leads_count", "created_time", "page_id",
                         "questions", "privacy_policy_url", "follow_up_action_url"})
LEAD_FIELDS = frozenset({"id", "created_time", "field_data", "form_id", "ad_id", "ad_name",
                         "adset_id", "campaign_id", "campaign_name", "is_organic", "platform"})
DEFAULTS = {"Campaign": ("id",), "LeadgenForm": ("id", "locale", "name", "status"),
            "Lead": ("created_time", "id", "field_data")}
TYPE_FIELDS = {"Campaign": CAMPAIGN_FIELDS, "LeadgenForm": FORM_FIELDS, "Lead": LEAD_FIELDS}
# (parent type, edge) -> the type it lists: the edges the marketing routing answers.
SERVED_EDGES = {("AdAccount", "campaigns"): "Campaign", ("AdAccount", "insights"): "AdsInsights",
                ("Page", "leadgen_forms"): "LeadgenForm", ("Campaign", "insights"): "AdsInsights",
                ("LeadgenForm", "leads"): "Lead"}
_CAMPAIGN_BASE = 23850000000000000
_FORM_BASE = 1250000000000000
_LEAD_BASE = 1330000000000000
_WORDS = ("Prospección", "Remarketing", "Temporada", "Lanzamiento", "Marca", "Formularios")
_FORMS = (("Contacto", "ACTIVE", 30), ("Presupuesto", "ARCHIVED", 3))  # title, status, leads
_NAMES = ("Ana Pérez", "Bruno Díaz", "Carla Gómez", "Diego Ruiz", "Elena Núñez", "Fermín Sáez")


@dataclass
class State:
    """Marketing objects of one fixture set, and per-account call windows."""

    fixtures: Any
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaigns: dict[str, list[str]] = field(default_factory=dict)  # act_ id -> campaign ids
    forms: dict[str, list[str]] = field(default_factory=dict)  # page id -> form ids
    leads: dict[str, list[str]] = field(default_factory=dict)  # form id -> lead ids
    calls: dict[str, deque] = field(default_factory=dict)  # act_ id -> call times
    next_id: int = 0


def state(sandbox) -> State:
    """The marketing state of the sandbox's current fixtures (a reset builds new ones)."""
    current = sandbox.__dict__.get("_marketing")
    if current is None or current.fixtures is not sandbox.fixtures:
        current = _build(sandbox.fixtures, sandbox.config["seed"], sandbox.now())
        sandbox.__dict__["_marketing"] = current
    return current


def _build(fixtures, seed: int, now: datetime) -> State:
    state = State(fixtures)
    number = 0
    for obj in list(fixtures.objects.values()):
        if obj["_type"] != "AdAccount":
            continue
        rng = random.Random(f"{seed}:{obj['id']}")
        ids = state.campaigns.setdefault(obj["id"], [])
        for k in range(3 if obj["account_status"] == 1 else 1):
            number += 1
            status = "ACTIVE" if obj["account_status"] == 1 and k < 2 else "PAUSED"
            created = now - timedelta(days=rng.randrange(40, 400))
            ids.append(add(state, campaign(
                str(_CAMPAIGN_BASE + number), obj, f"{obj['name'].split(' · ')[0]} · "
                f"{_WORDS[(number - 1) % len(_WORDS)]} {k + 1}", OBJECTIVES[number % len(OBJECTIVES)],
                status, str(rng.randrange(10, 200) * 100), created)))
    state.next_id = _CAMPAIGN_BASE + number
    leads = 0
    pages = [o for o in fixtures.objects.values() if o["_type"] == "Page"]
    for n, page in enumerate(pages):
        for k, (title, status, count) in enumerate(_FORMS):
            form_id = str(_FORM_BASE + 10 * n + k + 1)
            add(state, {"_type": "LeadgenForm", "_page_id": page["id"], "id": form_id,
                         "name": f"{title} · {page['name']}", "status": status, "locale": "es_ES",
                         "leads_count": count, "page_id": page["id"],
                         "created_time": (now - timedelta(days=90 + k)).strftime(TIME_FORMAT),
                         "questions": [{"key": key, "label": label, "type": key.upper(), "id": key}
                                       for key, label in (("full_name", "Nombre"), ("email", "Email"),
                                                          ("phone_number", "Teléfono"))]})
            state.forms.setdefault(page["id"], []).append(form_id)
            for j in range(count):
                leads += 1
                state.leads.setdefault(form_id, []).append(add(state, _lead(
                    str(_LEAD_BASE + leads), form_id, page, now - timedelta(hours=7 * (count - j)), leads)))
    return state


def add(state: State, obj: dict[str, Any]) -> str:
    state.objects[obj["id"]] = obj
    return obj["id"]


def campaign(campaign_id, account, name, objective, status, budget, created) -> dict[str, Any]:
    stamp = created.strftime(TIME_FORMAT)
    return {"_type": "Campaign", "_account_id": account["id"], "_business_id": account.get("_business_id"),
            "id": campaign_id, "account_id": account["account_id"], "name": name, "objective": objective,
            "status": status, "configured_status": status, "effective_status": status,
            "buying_type": "AUCTION", "daily_budget": budget, "budget_remaining": budget,
            "bid_strategy": "LOWEST_COST_WITHOUT_CAP", "special_ad_categories": [],
            "created_time": stamp, "updated_time": stamp, "start_time": stamp}


def _lead(lead_id, form_id, page, created, n) -> dict[str, Any]:
    name = _NAMES[n % len(_NAMES)]
    return {"_type": "Lead", "_page_id": page["id"], "id": lead_id, "form_id": form_id,
            "created_time": created.strftime(TIME_FORMAT), "is_organic": n % 4 == 0,
            "platform": "ig" if n % 3 == 0 else "fb",
            "field_data": [{"name": "full_name", "values": [name]},
                           {"name": "email", "values": [f"lead{n}@example.test"]},
                           {"name": "phone_number", "values": [f"+3460000{n:04d}"]}]}


# -- the ad account's own budget -------------------------------------------------------------
def count_account(sandbox, state: State, account: dict[str, Any], usage, edge: str) -> None:
    """Count the call against the account's hourly budget; report it, refuse it when spent."""
    business_id = account.get("_business_id")
    if business_id and sandbox.fixtures.get(business_id) is not None:
        usage.business_id = business_id
    usage.use_case = "ads_insights" if edge == "insights" else "ads_management"
    usage.ad_account = True
    now = sandbox.now().timestamp()
    window = state.calls.setdefault(account["id"], deque())
    window.append(now)
    while window and window[0] <= now - 3600:
        window.popleft()
    budget = sandbox.config["ad_account_call_budget"]
    over = len(window) > budget
    reset = max(1, math.ceil(window[0] + 3600 - now)) if len(window) >= budget else 0
    usage.headers["x-ad-account-usage"] = json.dumps(
        {"acc_id_util_pct": round(min(100.0, 100 * len(window) / budget), 2), "reset_time_duration": reset})
    if over and sandbox.config["enforce_rate_limits"]:
        regain = math.ceil(reset / 60)
        buc = {business_id or "0": [{"type": usage.use_case, "call_count": 100, "total_cputime": 50,
                                     "total_time": 75, "estimated_time_to_regain_access": regain}]}
        raise GraphRefusal(THROTTLED_80004, 80004, headers={
            "x-ad-account-usage": usage.headers["x-ad-account-usage"],
            "x-business-use-case-usage": json.dumps(buc)})
