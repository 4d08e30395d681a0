"""Keep-alive fixtures: connections minted straight in the sandbox, debug_token call counts, and no
scheduler left running after a test."""

from __future__ import annotations

from collections import Counter

import pytest

from crm_meta import jobs
from tests.helpers.keepalive import Connections
from tests.helpers.sandbox import DEBUG_TOKEN


@pytest.fixture
def connections(pg_app, sandbox):
    return Connections(pg_app, sandbox)


@pytest.fixture
def sqlite_connections(app, sandbox):
    return Connections(app, sandbox)


@pytest.fixture
def debug_calls(sandbox):
    """debug_token calls per token id so far, from the sandbox's call log: `debug_calls()`."""

    def count() -> Counter:
        calls = sandbox.get("calls")["calls"]
        return Counter(c["token_id"] for c in calls if c["path"].endswith(DEBUG_TOKEN))

    return count


@pytest.fixture(autouse=True)
def _no_scheduler_left():
    yield
    jobs.shutdown()
