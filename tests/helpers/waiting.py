"""Polling for what a background thread or process does."""

from __future__ import annotations

import time

import pytest


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll until condition() is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)
