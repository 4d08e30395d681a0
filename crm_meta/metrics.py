"""Prometheus metrics of the service (exposed at /metrics)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

OAUTH_REQUESTS = Counter("meta_oauth_requests_total", "OAuth endpoint calls", ["endpoint", "status"])
OAUTH_ERRORS = Counter("meta_oauth_errors_total", "OAuth flow failures", ["reason"])
TOKEN_VALIDATIONS = Counter("meta_token_validations_total", "Token checks with Meta", ["result"])
GRAPH_CALLS = Counter("meta_graph_calls_total", "Graph API calls", ["endpoint", "outcome"])
RATELIMIT_FALLBACKS = Counter("meta_ratelimit_storage_fallbacks_total",
                              "Times rate limiting fell back to in-process counters (Redis unreachable)")
GRAPH_LATENCY = Histogram("meta_api_response_time_seconds", "Graph API latency", ["endpoint"])
PROXY_CALLS = Counter("meta_proxy_calls_total", "Graph calls the CRM's services made through the proxy",
                      ["service", "status"])
GOVERNOR_HOLDS = Counter("meta_governor_refusals_total",
                         "Calls the rate governor refused before Meta", ["scope"])  # app/business/ad_account


class ConnectionCollector:
    """Per-scrape gauges read from storage, so every worker reports the same truth."""

    def __init__(self, rows, now, app_misconfigured: bool = False):
        self.rows = rows  # [(tenant slug, effective status, expires_at or None)]
        self.now = now
        self.app_misconfigured = app_misconfigured  # stored verdict, the same for every worker

    def collect(self):
        expiry = GaugeMetricFamily("meta_token_expires_in_hours",
                                   "Hours until a tenant's Meta token expires", labels=["tenant"])
        by_status = GaugeMetricFamily("meta_connections", "Stored Meta connections by status",
                                      labels=["status"])
        counts: dict[str, int] = {}
        for slug, status, expires_at in self.rows:
            counts[status] = counts.get(status, 0) + 1
            if expires_at is not None:
                expiry.add_metric([slug], round((expires_at - self.now).total_seconds() / 3600, 2))
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield expiry
        yield by_status
        yield GaugeMetricFamily("meta_app_misconfigured",
                                "1 when Meta refuses the app's own credential (checks paused), else 0",
                                value=1 if self.app_misconfigured else 0)


def exposition(extra_collector) -> bytes:
    """The text exposition: all workers' counters in multiprocess mode, else this process's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(extra_collector)
    try:
        return generate_latest(registry)
    finally:
        registry.unregister(extra_collector)
