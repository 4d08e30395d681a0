"""Benchmark: sequential Graph round trips and wall time of the connect flow vs. account size.

Runs the real connector code (code exchange, debug_token, discovery) against the sandbox on a
live port with added latency, for growing numbers of businesses and ad accounts, and writes
the figures to bench/results/connect.json. Run: .venv/bin/python bench/connect_bench.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm_meta.meta import assets, exchange, tokens  # noqa: E402
from crm_meta.meta.graph import GraphClient  # noqa: E402
from meta_sandbox import create_sandbox_app, serve_in_thread  # noqa: E402
from tests.tools.configs import meta_settings  # noqa: E402

APP_ID, SECRET, REDIRECT = "100000000000123", "bench-secret", "http://localhost/cb"
SCOPES = ["ads_management", "business_management", "whatsapp_business_management",
          "pages_read_engagement", "read_insights"]
LATENCY_MS = 50
CASES = [(1, 5), (3, 150), (10, 150), (50, 150), (200, 20)]
# Channels (issue 23): CRM Ventas' panel scopes plus ours, an SDK code (no redirect_uri), and
# growing numbers of Pages (each with its token and Instagram account) and phone numbers.
CHANNEL_SCOPES = [*SCOPES, "pages_show_list", "pages_manage_metadata", "pages_messaging",
                  "instagram_basic", "instagram_manage_messages", "whatsapp_business_messaging"]
# (businesses, pages, phone numbers)
CHANNEL_CASES = [(3, 0, 0), (3, 100, 20), (10, 200, 90), (10, 300, 150), (50, 1000, 400),
                 (50, 5000, 400), (50, 10000, 400)]


def connect_once(base: str, scopes=SCOPES, sdk: bool = False, background: list | None = None):
    """One full connect; returns (round trips, seconds, discovery). `sdk`: the code comes from
    the JavaScript SDK (the dialog returns to its xd_arbiter; exchanged with no redirect_uri).
    When the connect's discovery stopped at its budget, `background` gets the discovery job's
    [round trips, seconds] and the discovery returned is the job's (complete) one."""
    background = [] if background is None else background
    graph = GraphClient(meta_settings(base_url=base, version="v25.0", app_id=APP_ID, app_secret=SECRET))
    trips = []
    original = graph._once
    graph._once = lambda out: trips.append(out.path) or original(out)
    redirect = f"{base}/x/connect/xd_arbiter?origin=http://crm.test" if sdk else REDIRECT
    url = f"{base}/v25.0/dialog/oauth?" + urlencode({"client_id": APP_ID, "redirect_uri": redirect,
                                                     "state": "s", "scope": ",".join(scopes)})
    location = requests.post(url, data={"decision": "approve", "granted": scopes},
                             allow_redirects=False, timeout=30).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    started = time.perf_counter()
    issued = tokens.ensure_long_lived(graph, tokens.exchange_code(
        graph, code=code, redirect_uri="" if sdk else REDIRECT))
    info = tokens.inspect(graph, issued.access_token)
    # As the connect does: the discovery within its round budget (issue 23)...
    found = assets.discover(graph, issued.access_token, set(info.scopes),
                            rounds=exchange.CONNECT_BATCH_ROUNDS)
    elapsed = time.perf_counter() - started
    connect_trips = len(trips)
    if not found.complete:  # ...then, after the answer, the discovery job's full listing
        trips.clear()
        started = time.perf_counter()
        found = assets.discover(graph, issued.access_token, set(info.scopes))
        background[:] = [len(trips), round(time.perf_counter() - started, 3)]
    return connect_trips, elapsed, found


def accounts_of(found) -> int:
    return sum(len(b["ad_accounts"]) for b in found.businesses) + len(found.personal_ad_accounts)


def channel_cases(url: str) -> list[dict]:
    """Also counts the Graph calls Meta would bill (batch items: each counts, Meta's batch doc)."""
    rows = []
    for businesses, pages, phones in CHANNEL_CASES:
        requests.post(f"{url}/_sandbox/reset", timeout=30)
        requests.post(f"{url}/_sandbox/config", timeout=120, json={
            "businesses": businesses, "ad_accounts_per_business": 20, "extra_pages": pages,
            "extra_phone_numbers": phones, "latency_ms": LATENCY_MS})
        background: list = []
        trips, seconds, found = connect_once(url, CHANNEL_SCOPES, sdk=True, background=background)
        graph_calls = len(requests.get(f"{url}/_sandbox/calls", timeout=30).json()["calls"])
        numbers = sum(len(w["phone_numbers"]) for b in found.businesses
                      for w in b["whatsapp_business_accounts"])
        row = {"businesses": len(found.businesses), "ad_accounts": accounts_of(found),
               "pages": len(found.pages), "page_tokens": len(found.page_tokens),
               "instagram_accounts": len(found.instagram), "phone_numbers": numbers,
               "round_trips": trips, "graph_calls": graph_calls, "seconds": round(seconds, 3),
               "latency_ms": LATENCY_MS,
               "background_round_trips": background[0] if background else 0,
               "background_seconds": background[1] if background else 0}
        rows.append(row)
        print(row)
    return rows


def main() -> None:
    server = serve_in_thread(create_sandbox_app(APP_ID, SECRET, REDIRECT))
    results = []
    try:
        for businesses, per_business in CASES:
            requests.post(f"{server.url}/_sandbox/reset", timeout=30)
            requests.post(f"{server.url}/_sandbox/config", timeout=60, json={
                "businesses": businesses, "ad_accounts_per_business": per_business,
                "latency_ms": LATENCY_MS})
            trips, seconds, found = connect_once(server.url)
            row = {"businesses": len(found.businesses), "ad_accounts": accounts_of(found),
                   "round_trips": trips,
                   "seconds": round(seconds, 3), "latency_ms": LATENCY_MS,
                   "per_call_floor_s": round(trips * LATENCY_MS / 1000, 3)}
            results.append(row)
            print(row)
        channels = channel_cases(server.url)
    finally:
        server.shutdown()
    out = ROOT / "bench" / "results" / "connect.json"
    out.write_text(json.dumps({"cases": results, "channels": channels}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
