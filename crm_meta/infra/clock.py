"""One clock for every "what time is it" in the domain; follows the sandbox in sandbox mode.

`now()` never waits on the network for the in-app sandbox (it is read in-process); only a
standalone sandbox is asked over HTTP, and its answer is cached for `ttl` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import requests

log = logging.getLogger(__name__)


@runtime_checkable
class Clock(Protocol):
    """What every service that asks "what time is it" takes: aware UTC datetimes. The runtime
    picks one of the clocks below; unit tests pass a fixed one (tests/tools/clock.FrozenClock)."""

    def now(self) -> datetime: ...


class SystemClock:
    """Real UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class InAppSandboxClock:
    """The in-app sandbox's own time, read in-process: a request never waits on a call to itself."""

    def __init__(self, sandbox):
        self.sandbox = sandbox  # meta_sandbox.Sandbox, served by this very app

    def offset(self) -> float:
        return self.sandbox.offset.total_seconds()

    def now(self) -> datetime:
        return self.sandbox.now()


class SandboxClock:
    """A standalone sandbox's time: real time plus its offset, read from `{base}/_sandbox/clock`
    at most once per `ttl` seconds."""

    def __init__(self, base_url: str, *, ttl: float, control_token: str, timeout: float = 2.0):
        self.url = base_url.rstrip("/") + "/_sandbox/clock"
        # The control API wants SANDBOX_CONTROL_TOKEN when set (say the app reaches its own
        # sandbox through a public API_BASE_URL, not loopback).
        self.headers = {"X-Sandbox-Control-Token": control_token} if control_token else {}
        self.ttl = ttl
        self.timeout = timeout
        self._offset = 0.0
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def offset(self) -> float:
        with self._lock:
            if time.monotonic() - self._fetched_at >= self.ttl:
                try:
                    response = requests.get(self.url, headers=self.headers, timeout=self.timeout)
                    response.raise_for_status()
                    self._offset = float(response.json()["offset_seconds"])
                    self._fetched_at = time.monotonic()
                except (requests.RequestException, ValueError, KeyError):
                    # The sandbox may not be up yet, or may have gone away: time goes on.
                    log.warning("sandbox clock unreachable at %s; using the last offset", self.url)
            return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())
