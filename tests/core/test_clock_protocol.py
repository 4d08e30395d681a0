"""One Clock protocol: the product's clocks and the tests' fixed one all satisfy it, and a
service given a fixed clock reads its time from it (never from the system)."""

from __future__ import annotations

from datetime import timedelta

from crm_meta.infra.clock import Clock, InAppSandboxClock, SandboxClock, SystemClock
from crm_meta.runtime import of
from tests.tools.clock import FrozenClock


def test_every_clock_is_a_clock(sandbox_server):
    clocks = [SystemClock(), SandboxClock(sandbox_server.url, ttl=0, control_token=""),
              InAppSandboxClock(object()), FrozenClock()]
    assert all(isinstance(clock, Clock) for clock in clocks)
    assert not isinstance(object(), Clock)


def test_the_runtime_hands_its_one_clock_to_its_services(app):
    parts = of(app)
    assert isinstance(parts.clock, Clock)
    assert parts.graph.clock is parts.clock and parts.graph.governor.clock is parts.clock
    assert parts.notifier.clock is parts.clock and parts.webhooks.clock is parts.clock


def test_a_fixed_clock_drives_the_graph_clients_cool_down(app):
    graph, fixed = of(app).graph, FrozenClock()
    graph.clock = fixed
    graph._cool_down(60)
    assert graph._cooldown_until == fixed.now() + timedelta(seconds=60)
