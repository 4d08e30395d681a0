"""One rate governor for every worker and host: Meta's usage headers in, "wait" verdicts out.

Every Graph answer (proxy, sweep, discovery) passes its `x-app-usage`,
`x-business-use-case-usage` and `x-ad-account-usage` headers to `observe`. A scope (the app,
one business, one ad account) at or over the threshold, or one Meta says to leave alone for
`estimated_time_to_regain_access` / `reset_time_duration`, is held back until then (or for
`hold_seconds` when Meta names no time: the next answer after that tells again). `check`
refuses a call before it reaches Meta while one of its scopes is held back.

Holds live in Redis (shared by every process) or, without Redis, in this process. They only
ever grow: an answer that was in flight when a hold began cannot shorten it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

from crm_meta.infra import metrics
from crm_meta.infra.clock import Clock
from crm_meta.meta.errors import ThrottledError
from crm_meta.meta.settings import GovernorSettings, MetaSettings
from crm_meta.meta.types import Headers
from crm_meta.meta.usage import APP, readings

log = logging.getLogger(__name__)


class GovernorRefusal(ThrottledError):
    """Refused before calling Meta: a scope of this call is over its budget."""

    kind = "governed"

    def __init__(self, scope: str, retry_after: int):
        super().__init__(f"Meta's budget for {scope} is nearly spent; retry in {retry_after}s")
        self.waiting(retry_after)
        self.scope = scope


class Holds(Protocol):
    """Where holds are kept: until when (epoch seconds) each scope is held."""

    def extend(self, scope: str, until: float, ttl: int) -> None: ...

    def get(self, scopes: list[str]) -> list[float]: ...


class MemoryHolds:
    """Holds of this process only (no REDIS_URL)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def extend(self, scope: str, until: float, ttl: int) -> None:
        with self._lock:
            if until > self._until.get(scope, 0.0):
                self._until[scope] = until

    def get(self, scopes: list[str]) -> list[float]:
        with self._lock:
            return [self._until.get(scope, 0.0) for scope in scopes]


# Set the hold only if it ends later than the one stored; expire it (real seconds) after it.
_EXTEND = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


class RedisHolds:
    """Holds shared by every process through Redis; in this process while Redis is away."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self._extend = self.client.register_script(_EXTEND)
        self.fallback = MemoryHolds()
        self._errors = (redis.RedisError, OSError)

    def key(self, scope: str) -> str:
        return f"{self.prefix}:{scope}"

    def extend(self, scope: str, until: float, ttl: int) -> None:
        self.fallback.extend(scope, until, ttl)
        try:
            self._extend(keys=[self.key(scope)], args=[repr(until), max(1, ttl)])
        except self._errors as exc:
            log.warning("rate governor: Redis unavailable (%s); holding in this process only",
                        type(exc).__name__)

    def get(self, scopes: list[str]) -> list[float]:
        local = self.fallback.get(scopes)
        try:
            shared = self.client.mget([self.key(scope) for scope in scopes])
        except self._errors as exc:
            log.warning("rate governor: Redis unavailable (%s); using this process's holds",
                        type(exc).__name__)
            return local
        return [max(mine, float(value or 0)) for mine, value in zip(local, shared, strict=True)]


class Governor:
    """Reads Meta's usage from answers; refuses calls whose app, business or ad account is held."""

    def __init__(self, holds: Holds, rules: GovernorSettings, *, clock: Clock | None = None):
        self.holds = holds
        self.threshold = rules.threshold
        self.hold_seconds = rules.hold_seconds
        self.clock = clock

    def now(self) -> float:
        # The domain clock: in sandbox mode the sandbox's clock ages holds like everything else.
        return self.clock.now().timestamp() if self.clock is not None else time.time()

    def observe(self, path: str, headers: Headers) -> None:
        """Record what one Graph answer's usage headers say."""
        found = readings(path, headers)
        if not found:
            return
        now = None
        for scope, pct, wait in found:
            if pct < self.threshold and wait <= 0:
                continue
            wait = wait if wait > 0 else self.hold_seconds
            now = self.now() if now is None else now
            log.warning("rate governor: %s at %.0f%% of Meta's budget; holding calls for %.0fs",
                        scope, pct, wait)
            self.holds.extend(scope, now + wait, math.ceil(wait) + 5)

    def check(self, scopes: list[str]) -> None:
        """Raise GovernorRefusal when one of `scopes` (the app is always one) is held."""
        scopes = [APP, *(s for s in scopes if s != APP)]
        until = self.holds.get(scopes)
        latest = max(until)
        if latest <= 0:
            return
        now = self.now()
        if latest > now:
            scope = scopes[until.index(latest)]
            metrics.GOVERNOR_HOLDS.labels(scope=scope.split(":")[0]).inc()
            raise GovernorRefusal(scope, max(1, math.ceil(latest - now)))


def build_governor(settings: MetaSettings, clock: Clock) -> Governor:
    """The Governor of these settings: Redis-backed when REDIS_URL is set."""
    rules = settings.governor
    holds: Holds
    if rules.redis_url:
        holds = RedisHolds(rules.redis_url, f"{rules.key_prefix}:{settings.app_id}")
    else:
        holds = MemoryHolds()
    return Governor(holds, rules, clock=clock)
