"""Helpers of the deployment tests: PromQL metric names, what /metrics exports, promtool."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "crm-meta.json"

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "unknown": ("",),
            "info": ("_info",), "stateset": ("",), "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
# Grafana's own variables become something PromQL parses.
GRAFANA_VARIABLES = re.compile(r"\$(__rate_interval|__interval|__range)|\$\{[^}]+\}|\$[A-Za-z_]\w*")


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects (by name or by a __name__ matcher)."""
    expr = GRAFANA_VARIABLES.sub(lambda m: "5m" if m.group(1) else "x", expr)
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every sample name /metrics can carry, including families that have no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def promtool() -> str:
    """promtool's path; skips with the reason, or fails under REQUIRE_PROMTOOL=1 (CI)."""
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool missing (Debian's prometheus package; scripts/ensure_promtool.sh installs it)"
    if os.environ.get("REQUIRE_PROMTOOL"):
        pytest.fail(f"{message} but REQUIRE_PROMTOOL=1")
    pytest.skip(f"{message}; set REQUIRE_PROMTOOL=1 to make this a failure")
