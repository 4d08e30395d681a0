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
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm_meta.meta import assets, tokens  # noqa: E402
from crm_meta.meta.graph import GraphClient  # noqa: E402
from meta_sandbox import create_sandbox_app, serve_in_thread  # noqa: E402

APP_ID, SECRET, REDIRECT = "100000000000123", "bench-secret", "http://localhost/cb"
SCOPES = ["ads_management", "business_management", "whatsapp_business_management",
          "pages_read_engagement", "read_insights"]
LATENCY_MS = 50
CASES = [(1, 5), (3, 150), (10, 150), (50, 150), (200, 20)]


def connect_once(base: str) -> tuple[int, float, int, int]:
    """One full connect; returns (round trips, seconds, businesses, ad accounts)."""
    graph = GraphClient(base_url=base, version="v25.0", app_id=APP_ID, app_secret=SECRET)
    trips = []
    original = graph._once
    graph._once = lambda method, path, *rest: trips.append(path) or original(method, path, *rest)
    url = (f"{base}/v25.0/dialog/oauth?client_id={APP_ID}&redirect_uri={REDIRECT}"
           f"&state=s&scope={','.join(SCOPES)}")
    location = requests.post(url, data={"decision": "approve", "granted": SCOPES},
                             allow_redirects=False, timeout=30).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    started = time.perf_counter()
    issued = tokens.ensure_long_lived(graph, tokens.exchange_code(
        graph, code=code, redirect_uri=REDIRECT))
    info = tokens.inspect(graph, issued.access_token)
    found = assets.discover(graph, issued.access_token, set(info.scopes))
    elapsed = time.perf_counter() - started
    accounts = sum(len(b["ad_accounts"]) for b in found.businesses) + len(found.personal_ad_accounts)
    return len(trips), elapsed, len(found.businesses), accounts


def main() -> None:
    server = serve_in_thread(create_sandbox_app(APP_ID, SECRET, REDIRECT))
    results = []
    try:
        for businesses, per_business in CASES:
            requests.post(f"{server.url}/_sandbox/reset", timeout=30)
            requests.post(f"{server.url}/_sandbox/config", timeout=60, json={
                "businesses": businesses, "ad_accounts_per_business": per_business,
                "latency_ms": LATENCY_MS})
            trips, seconds, found_b, found_a = connect_once(server.url)
            row = {"businesses": found_b, "ad_accounts": found_a, "round_trips": trips,
                   "seconds": round(seconds, 3), "latency_ms": LATENCY_MS,
                   "per_call_floor_s": round(trips * LATENCY_MS / 1000, 3)}
            results.append(row)
            print(row)
    finally:
        server.shutdown()
    out = ROOT / "bench" / "results" / "connect.json"
    out.write_text(json.dumps({"cases": results}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
