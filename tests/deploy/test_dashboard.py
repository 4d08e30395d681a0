"""deploy/grafana/crm-meta.json: a Grafana dashboard whose every query names exported metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prometheus_client.metrics import MetricWrapperBase

from crm_meta.infra import metrics
from tests.deploy.support import DASHBOARD, SUFFIXES, exported_names, metric_names

# Metrics crm_meta/infra/metrics.py defines that no panel shows, each with the reason. Empty: a
# new metric gets a panel, or a line here saying why it needs none (the test below holds both).
NO_PANEL: dict[str, str] = {}


def panels() -> list[dict]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return found


def queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel.get("targets", [])]


def test_every_query_names_a_metric_the_app_exports(client):
    exported = exported_names(client.get("/metrics").get_data(as_text=True))
    for expr in queries():
        named = metric_names(expr)
        assert named, f"no metric in {expr!r}"
        assert named <= exported, f"{expr!r} names {named - exported}"


def defined_families() -> dict[str, set[str]]:
    """Every metric family crm_meta/infra/metrics.py defines (its module-level metrics and the
    per-scrape gauges of StateCollector), with the sample names a query may select it by."""
    families = [family for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)
                for family in value.collect()]
    families += metrics.StateCollector(metrics.State(now=datetime.now(UTC))).collect()
    return {family.name: {family.name + suffix for suffix in SUFFIXES[family.type]}
            for family in families}


def test_every_metric_the_app_defines_has_a_panel_or_says_why_not():
    defined = defined_families()
    assert {"meta_service_key_refusals", "meta_token_expires_in_hours"} <= set(defined)  # both kinds
    named = set().union(*(metric_names(expr) for expr in queries()))
    unshown = sorted(name for name, samples in defined.items() if not samples & named)
    assert unshown == sorted(NO_PANEL), "metrics without a panel (add one, or say why in NO_PANEL)"
    assert set(NO_PANEL) <= set(defined)


def test_the_dashboard_shows_what_issue_13_asks_for():
    named = set().union(*(metric_names(expr) for expr in queries()))
    assert {
        "meta_connections",  # connections by status
        "meta_token_expires_in_hours",  # days to expiry per tenant
        "meta_oauth_callbacks_total",  # OAuth outcomes
        "meta_api_response_time_seconds_bucket", "meta_graph_calls_total",  # Graph latency, errors
        "meta_keepalive_sweep_duration_seconds_bucket", "meta_keepalive_sweeps_total",  # the sweep
        "meta_keepalive_checks_total",
        "meta_notify_outbox_notices",  # outbox depth
    } <= named


def test_every_panel_queries_the_chosen_prometheus_and_has_a_unique_id():
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] == "crm-meta" and document["schemaVersion"] >= 36
    [variable] = [v for v in document["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
