"""The gateway's own limit: per service and tenant, so one tenant's burst spends only its own
budget (RATELIMIT_GRAPH_GATEWAY, counted in Flask-Limiter's storage: Redis when shared)."""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import parse

from crm_meta.http.errors import AppError
from crm_meta.runtime import runtime

log = logging.getLogger(__name__)


def spend(service: str, tenant_id: int) -> None:
    """Count one call of `service` for `tenant_id`; refuse it (429, Retry-After) over the limit."""
    limiter = runtime().limiter
    if limiter is None or not limiter.enabled:
        return
    item = parse(current_app.config["RATELIMIT_GRAPH_GATEWAY"])
    keys = (current_app.config["RATELIMIT_KEY_PREFIX"], "gateway", service, str(tenant_id))
    try:
        strategy = limiter.limiter
        if strategy.hit(item, *keys):
            return
        reset = strategy.get_window_stats(item, *keys).reset_time
    except Exception as exc:  # the storage is away: never fail a call for it
        log.warning("gateway limit not counted (%s)", type(exc).__name__)
        return
    wait = max(1, math.ceil(reset - time.time()))
    raise AppError(f"User request limit reached; retry in {wait}s", code="gateway_rate_limited",
                   status=429, retry_after=wait)
