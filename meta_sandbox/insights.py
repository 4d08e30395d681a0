"""Ads insights as Meta's `/insights` edge answers them: date presets, levels, time increments.

Figures are deterministic per object and day (same seed, same numbers) and, like Meta's,
every metric is a string. Field names follow Meta's AdsInsights reference.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from typing import Any

from .errors import GraphRefusal, bad_param

# Meta's date_preset values for the insights edge (AdsInsights.DatePreset).
DATE_PRESETS = (
    "today", "yesterday", "this_month", "last_month", "this_quarter", "maximum", "data_maximum",
    "last_3d", "last_7d", "last_14d", "last_28d", "last_30d", "last_90d", "last_week_mon_sun",
    "last_week_sun_sat", "last_quarter", "last_year", "this_week_mon_today", "this_week_sun_today",
    "this_year",
)
DEFAULT_PRESET = "last_30d"  # Meta's default when neither date_preset nor time_range is sent
MAXIMUM_MONTHS = 37  # how far back `maximum` reaches
LEVELS = ("account", "campaign", "adset", "ad")
METRICS = frozenset({
    "impressions", "clicks", "spend", "reach", "frequency", "ctr", "cpc", "cpm", "cpp",
    "unique_clicks", "inline_link_clicks", "actions", "objective",
})
DESCRIPTIVE = frozenset({
    "account_id", "account_name", "account_currency", "campaign_id", "campaign_name",
    "adset_id", "adset_name", "ad_id", "ad_name", "date_start", "date_stop",
})
FIELDS = METRICS | DESCRIPTIVE
DEFAULT_FIELDS = ("account_id", "impressions", "spend")  # chosen: Meta's documented defaults vary


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The (since, until) days a date_preset covers, as of `today` (inclusive)."""
    yesterday = today - timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    if preset.startswith("last_") and preset.endswith("d") and preset[5:-1].isdigit():
        return today - timedelta(days=int(preset[5:-1])), yesterday
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        start = _month_back(today, 1)
        return start, today.replace(day=1) - timedelta(days=1)
    if preset == "this_quarter":
        return _quarter_start(today), today
    if preset == "last_quarter":
        end = _quarter_start(today) - timedelta(days=1)
        return _quarter_start(end), end
    if preset == "this_year":
        return date(today.year, 1, 1), today
    if preset == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    if preset in ("this_week_mon_today", "this_week_sun_today"):
        offset = today.weekday() if preset.endswith("mon_today") else (today.weekday() + 1) % 7
        return today - timedelta(days=offset), today
    if preset in ("last_week_mon_sun", "last_week_sun_sat"):
        offset = today.weekday() if preset == "last_week_mon_sun" else (today.weekday() + 1) % 7
        start = today - timedelta(days=offset + 7)
        return start, start + timedelta(days=6)
    return _month_back(today, MAXIMUM_MONTHS), today  # maximum, data_maximum


def date_range(params: dict[str, str], now: datetime) -> tuple[date, date]:
    """From `time_range` ({"since","until"}) or `date_preset`; Meta's errors otherwise."""
    raw = params.get("time_range")
    if raw:
        try:
            value = json.loads(raw)
            since, until = date.fromisoformat(value["since"]), date.fromisoformat(value["until"])
        except (ValueError, TypeError, KeyError):
            raise bad_param("(#100) time_range must be an object like {\"since\":\"YYYY-MM-DD\","
                            "\"until\":\"YYYY-MM-DD\"}") from None
        if since > until:
            raise bad_param("(#100) time_range: since must not be after until")
        if since < _month_back(now.date(), MAXIMUM_MONTHS):
            raise GraphRefusal("The start date of the time range cannot be beyond 37 months from "
                             "the current date", 3018)
        return since, until
    preset = params.get("date_preset") or DEFAULT_PRESET
    if preset not in DATE_PRESETS:
        raise bad_param("(#100) date_preset must be one of the following values: " + ", ".join(DATE_PRESETS))
    return preset_range(preset, now.date())


def requested_fields(raw: str | None) -> list[str]:
    """The insights fields asked for (flat names only), refused like Meta refuses them."""
    if not raw or not raw.strip():
        return list(DEFAULT_FIELDS)
    names = [name.strip() for name in raw.split(",") if name.strip()]
    invalid = [name for name in names if name not in FIELDS]
    if invalid:  # every invalid name in one message, as Meta names them
        verb = "is" if len(invalid) == 1 else "are"
        raise bad_param(f"(#100) {', '.join(invalid)} {verb} not valid for fields param. please check "
                        "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ "
                        "for all valid values")
    return names


def buckets(since: date, until: date, increment: str | None) -> list[tuple[date, date]]:
    """Split the range: `all_days` (default), `monthly`, or N days (1-90)."""
    if increment in (None, "", "all_days"):
        return [(since, until)]
    if increment == "monthly":
        result, start = [], since
        while start <= until:
            end = min(until, _month_back(start, -1) - timedelta(days=1))
            result.append((start, end))
            start = end + timedelta(days=1)
        return result
    if not increment.isdigit() or not 1 <= int(increment) <= 90:
        raise bad_param("(#100) time_increment must be all_days, monthly or a number of days from 1 to 90")
    step, result, start = int(increment), [], since
    while start <= until:
        end = min(until, start + timedelta(days=step - 1))
        result.append((start, end))
        start = end + timedelta(days=1)
    return result


def _day_figures(object_id: str, day: date) -> dict[str, int]:
    rng = random.Random(f"{object_id}:{day.isoformat()}")
    impressions = rng.randrange(200, 20_000)
    reach = max(1, int(impressions / rng.uniform(1.1, 2.5)))
    clicks = int(impressions * rng.uniform(0.004, 0.03))
    return {"impressions": impressions, "reach": reach, "clicks": clicks,
            "unique_clicks": int(clicks * 0.9), "inline_link_clicks": int(clicks * 0.7),
            "spend_cents": int(impressions * rng.uniform(0.2, 1.2)),
            "leads": rng.randrange(0, 1 + clicks // 10)}


def _money(cents: float) -> str:
    return f"{cents / 100:.2f}"


def row(subject: dict[str, Any], account: dict[str, Any], span: tuple[date, date],
        fields: list[str]) -> dict[str, Any]:
    """One insights row for `subject` (an ad account or a campaign) over `span`."""
    since, until = span
    total = dict.fromkeys(("impressions", "reach", "clicks", "unique_clicks", "inline_link_clicks",
                           "spend_cents", "leads"), 0)
    day = since
    while day <= until:
        for key, value in _day_figures(subject["id"], day).items():
            total[key] += value
        day += timedelta(days=1)
    impressions, clicks, spend = total["impressions"], total["clicks"], total["spend_cents"]
    values: dict[str, Any] = {
        "account_id": account["account_id"],
        "account_name": account["name"],
        "account_currency": account["currency"],
        "impressions": str(impressions),
        "clicks": str(clicks),
        "unique_clicks": str(total["unique_clicks"]),
        "inline_link_clicks": str(total["inline_link_clicks"]),
        "reach": str(total["reach"]),
        "spend": _money(spend),
        "frequency": f"{impressions / total['reach']:.6f}" if total["reach"] else "0",
        "ctr": f"{100 * clicks / impressions:.6f}" if impressions else "0",
        "cpc": f"{spend / 100 / clicks:.6f}" if clicks else "0",
        "cpm": f"{1000 * spend / 100 / impressions:.6f}" if impressions else "0",
        "cpp": f"{1000 * spend / 100 / total['reach']:.6f}" if total["reach"] else "0",
        "actions": [{"action_type": "lead", "value": str(total["leads"])},
                    {"action_type": "link_click", "value": str(total["inline_link_clicks"])}],
    }
    if subject["_type"] == "Campaign":
        values.update(campaign_id=subject["id"], campaign_name=subject["name"],
                      objective=subject["objective"])
    out = {name: values[name] for name in fields if name in values}
    out["date_start"], out["date_stop"] = since.isoformat(), until.isoformat()
    return out
