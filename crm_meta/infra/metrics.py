"""Prometheus metrics of the service (exposed at /metrics).

Two kinds: counters, histograms and gauges kept by the process that saw the event (added up
over gunicorn workers in multiprocess mode), and per-scrape gauges read from storage by
StateCollector, so that every worker and replica reports the same truth about connections.
The alert rules (deploy/prometheus/alerts.yml) and the dashboard (deploy/grafana/) name these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

OAUTH_REQUESTS = Counter("meta_oauth_requests_total", "OAuth endpoint calls", ["endpoint", "status"])
OAUTH_ERRORS = Counter("meta_oauth_errors_total", "OAuth flow failures", ["reason"])
# Every callback that reached the view, by outcome: `connected` or the error code it ended with.
OAUTH_CALLBACKS = Counter("meta_oauth_callbacks_total", "OAuth callbacks by outcome", ["outcome"])
TOKEN_VALIDATIONS = Counter("meta_token_validations_total", "Token checks with Meta", ["result"])
GRAPH_CALLS = Counter("meta_graph_calls_total", "Graph API calls", ["endpoint", "outcome"])
RATELIMIT_FALLBACKS = Counter("meta_ratelimit_storage_fallbacks_total",
                              "Times rate limiting fell back to in-process counters (Redis unreachable)")
# The periodic check of the app-level webhook subscription, by result (ok | lost | unknown).
WEBHOOK_SUBSCRIPTION_CHECKS = Counter("meta_webhook_subscription_checks_total",
                                      "Checks that Meta still sends the app's Page leadgen webhooks here",
                                      ["result"])
GRAPH_LATENCY = Histogram("meta_api_response_time_seconds", "Graph API latency", ["endpoint"])
PROXY_CALLS = Counter("meta_proxy_calls_total", "Graph calls the CRM's services made through the proxy",
                      ["service", "status"])
# Every refused service-key attempt on /internal/; `audited`: whether it got its own audit row.
SERVICE_KEY_REFUSALS = Counter("meta_service_key_refusals_total", "Refused service-key attempts",
                               ["reason", "audited"])
GOVERNOR_HOLDS = Counter("meta_governor_refusals_total",
                         "Calls the rate governor refused before Meta", ["scope"])  # app/business/ad_account
# Meta throttling the whole app: its code 4 answer, or x-app-usage reaching 100%.
APP_THROTTLED = Counter("meta_app_throttled_total", "Times Meta throttled the whole app", ["cause"])
# Highest x-app-usage figure (percent of the hourly budget) in Meta's latest answer.
APP_USAGE = Gauge("meta_app_usage_percent", "Meta app usage, percent of its budget",
                  multiprocess_mode="mostrecent")
# The keep-alive sweep: set by the process that ran it; max() over workers and replicas.
SWEEP_LAST_SUCCESS = Gauge(
    "meta_keepalive_sweep_last_success_timestamp_seconds",
    "Unix time the last keep-alive sweep completed (the scheduler's start until one has)",
    multiprocess_mode="max")
SWEEP_INTERVAL = Gauge("meta_keepalive_sweep_interval_seconds",
                       "Seconds between two scheduled keep-alive sweeps", multiprocess_mode="max")
SWEEPS = Counter("meta_keepalive_sweeps_total", "Scheduled keep-alive sweeps by result", ["result"])
SWEEP_DURATION = Histogram("meta_keepalive_sweep_duration_seconds", "Keep-alive sweep duration",
                           buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800))
KEEPALIVE_CHECKS = Counter("meta_keepalive_checks_total", "Connections looked at by sweeps, by outcome",
                           ["outcome"])
TOKENS_EXTENDED = Counter("meta_keepalive_tokens_extended_total", "Tokens the keep-alive extended")
# Meta's webhooks (crm_meta.webhooks, crm_meta.meta.webhooks).
WEBHOOK_RECEIVED = Counter("meta_webhook_deliveries_received_total",
                           "Signed deliveries from Meta stored in the inbox", ["route"])
WEBHOOK_SIGNATURE_FAILURES = Counter("meta_webhook_signature_failures_total",
                                     "Deliveries refused: X-Hub-Signature-256 missing or wrong")
WEBHOOK_ACK = Histogram("meta_webhook_ack_seconds", "Time from a delivery's arrival to its 200",
                        buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
WEBHOOK_MALFORMED = Counter("meta_webhook_malformed_total", "Signed deliveries that are not Meta's JSON")
WEBHOOK_PARKED = Counter("meta_webhook_entries_parked_total", "Entries no tenant owns, parked")
WEBHOOK_LEAD_READS_FAILED = Counter("meta_webhook_lead_reads_failed_total",
                                    "Lead reads Meta refused or failed", ["reason"])
WEBHOOK_FORWARDED = Counter("meta_webhook_events_forwarded_total", "Events the CRM accepted", ["type"])
WEBHOOK_FORWARD_FAILURES = Counter("meta_webhook_forward_failures_total",
                                   "Attempts to forward an event that failed", ["reason"])
WEBHOOK_DEAD_LETTERS = Counter("meta_webhook_dead_letters_total",
                               "Events given up after their retries (kept for replay)")


@dataclass
class ConnectionState:
    """One connection as /metrics sees it: status columns only, never the token."""

    tenant: str
    status: str
    expires_at: datetime | None
    data_access_expires_at: datetime | None
    extendable: bool


@dataclass
class State:
    """What a scrape reads from storage and configuration."""

    now: datetime
    connections: list[ConnectionState] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)  # pending / given_up -> notices
    graph_version: str = ""
    days_to_sunset: int | None = None  # None: no sunset announced for the version in use
    app_misconfigured: bool = False  # Meta refused the app's own credential (meta.app_health)
    webhook_subscription_lost: bool = False  # Meta no longer sends Page leadgen webhooks here
    # Meta's webhooks: inbox_pending, inbox_oldest_seconds, parked, dead_letters, events_pending.
    webhooks: dict[str, float] = field(default_factory=dict)


def _hours(moment: datetime, now: datetime) -> float:
    return round((moment - now).total_seconds() / 3600, 2)


class StateCollector:
    """Per-scrape gauges read from storage, so every worker reports the same truth."""

    def __init__(self, state: State):
        self.state = state

    def collect(self):
        state, now = self.state, self.state.now
        expiry = GaugeMetricFamily("meta_token_expires_in_hours",
                                   "Hours until a tenant's Meta token expires", labels=["tenant"])
        access = GaugeMetricFamily("meta_data_access_expires_in_hours",
                                   "Hours until a tenant's Meta data access expires", labels=["tenant"])
        extendable = GaugeMetricFamily(
            "meta_token_extendable",
            "1 while the keep-alive may still extend the tenant's token (a user token it has not "
            "yet tried to extend in its last 14 days); 0 when only a reconnect helps", labels=["tenant"])
        by_status = GaugeMetricFamily("meta_connections", "Stored Meta connections by status",
                                      labels=["status"])
        per_tenant = GaugeMetricFamily("meta_connection_status",
                                       "1 for each tenant's current connection status",
                                       labels=["tenant", "status"])
        counts: dict[str, int] = {}
        for row in state.connections:
            counts[row.status] = counts.get(row.status, 0) + 1
            per_tenant.add_metric([row.tenant, row.status], 1)
            extendable.add_metric([row.tenant], 1 if row.extendable else 0)
            if row.expires_at is not None:
                expiry.add_metric([row.tenant], _hours(row.expires_at, now))
            if row.data_access_expires_at is not None:
                access.add_metric([row.tenant], _hours(row.data_access_expires_at, now))
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        outbox = GaugeMetricFamily("meta_notify_outbox_notices",
                                   "Notices in the outbox not delivered: pending or given up",
                                   labels=["state"])
        for name in ("pending", "given_up"):
            outbox.add_metric([name], state.outbox.get(name, 0))
        sunset = GaugeMetricFamily("meta_graph_api_version_days_to_sunset",
                                   "Days until Meta retires the configured Graph API version",
                                   labels=["version"])
        if state.days_to_sunset is not None:
            sunset.add_metric([state.graph_version], state.days_to_sunset)
        misconfigured = GaugeMetricFamily(
            "meta_app_misconfigured",
            "1 when Meta refuses the app's own credential (checks paused), else 0",
            value=1 if state.app_misconfigured else 0)  # stored verdict, the same for every worker
        unsubscribed = GaugeMetricFamily(
            "meta_webhook_subscription_lost",
            "1 when the last check found Meta no longer sends the app's Page leadgen webhooks here "
            "(run `flask meta doctor --subscribe`), else 0",
            value=1 if state.webhook_subscription_lost else 0)
        yield from (expiry, access, extendable, by_status, per_tenant, outbox, sunset, misconfigured,
                    unsubscribed)
        yield from _webhook_gauges(state.webhooks)


WEBHOOK_GAUGES = (
    ("inbox_pending", "meta_webhook_inbox_pending", "Stored deliveries not routed yet"),
    ("inbox_oldest_seconds", "meta_webhook_inbox_oldest_age_seconds",
     "Age of the oldest delivery not routed yet (0 when none)"),
    ("parked", "meta_webhook_parked_entries", "Parked entries (no tenant owns their asset)"),
    ("events_pending", "meta_webhook_events_pending", "Events queued for the CRM, not delivered yet"),
    ("dead_letters", "meta_webhook_dead_letter_events", "Events given up, kept for replay"),
)


def _webhook_gauges(values: dict[str, float]):
    for key, name, text in WEBHOOK_GAUGES:
        yield GaugeMetricFamily(name, text, value=values.get(key, 0))


def exposition(state_collector) -> bytes:
    """The text exposition: all workers' series in multiprocess mode, else this process's, then
    the per-scrape gauges. A registry of its own per scrape: concurrent scrapes never collide."""
    scraped = CollectorRegistry()
    scraped.register(state_collector)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scraped)
        return generate_latest(scraped)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY) + generate_latest(scraped)
