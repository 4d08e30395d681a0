"""Rate limits on our own endpoints: one table of config strings, one Limiter per app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter

from crm_meta.auth.principal import rate_limit_key
from crm_meta.infra.metrics import RATELIMIT_FALLBACKS

log = logging.getLogger(__name__)


def by_address() -> str:
    """Anonymous endpoints count per client address (see TRUSTED_PROXIES behind a proxy)."""
    return f"ip:{request.remote_addr or 'unknown'}"


# endpoint -> (setting that holds its limit string, key function, methods it counts or None).
# rate_limit_key counts per tenant for authenticated callers and per address otherwise.
LIMITS = {
    "auth.login": ("RATELIMIT_LOGIN", by_address, ["POST"]),
    "api.meta_auth_url": ("RATELIMIT_META_URL", rate_limit_key, None),
    "api.meta_callback": ("RATELIMIT_META_CALLBACK", by_address, None),
    "api.meta_disconnect": ("RATELIMIT_META_DISCONNECT", rate_limit_key, None),
    "api.meta_test_connection": ("RATELIMIT_META_TEST", rate_limit_key, None),
    "web.connect_start": ("RATELIMIT_META_URL", rate_limit_key, None),
    "web.test_connection": ("RATELIMIT_META_TEST", rate_limit_key, None),
    "web.disconnect": ("RATELIMIT_META_DISCONNECT", rate_limit_key, None),
    "callbacks.deauthorize": ("RATELIMIT_META_CALLBACKS", by_address, None),
    "callbacks.data_deletion": ("RATELIMIT_META_CALLBACKS", by_address, None),
}


def authorized(response) -> bool:
    """Count a call once it got past authentication and roles: refusals (401, 403) spend no
    one's budget, so a member or a stranger cannot use up the admins' calls."""
    return response.status_code not in (401, 403)


def init_app(app: Flask) -> Limiter:
    """A Limiter of this app's own (storage, switch and prefix from its config), wrapping
    the endpoints of LIMITS; each app in a process keeps its own counters and settings."""
    limiter = Limiter(key_func=rate_limit_key, app=app)
    # Only the endpoints of LIMITS have a limit: every other request skips the limiter's work.
    _gate_hooks(app, limiter)
    for endpoint, (setting, key_func, methods) in LIMITS.items():
        deduct_when = authorized if key_func is rate_limit_key else None
        limit = limiter.limit(lambda setting=setting: current_app.config[setting],
                              key_func=key_func, methods=methods, deduct_when=deduct_when)
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    watch = FallbackWatch(limiter)
    app.teardown_request(lambda exc: watch.check())
    return limiter


def _gate_hooks(app: Flask, limiter: Limiter) -> None:
    """Run the three request hooks the limiter registered (its check before the view, its
    headers and conditional deductions after, its context reset at teardown) only for the
    endpoints of LIMITS. Without a limit, a request got nothing from them, yet paid each
    request for a lookup of the view's name, an exemption scope, a per-request context and
    the hooks' own calls (9 % of a status read's time, bench/README.md, issue 21 item 7).
    A disabled limiter (RATELIMIT_ENABLED off) registered none."""
    if not limiter.enabled:
        return
    hooks: list[tuple[list[Callable[..., Any]], Callable[..., Callable[..., Any]]]] = [
        (app.before_request_funcs.setdefault(None, []), _unless_limited(lambda *args: None)),
        (app.after_request_funcs.setdefault(None, []), _unless_limited(lambda response: response)),
        (app.teardown_request_funcs.setdefault(None, []), _unless_limited(lambda *args: None)),
    ]
    for registered, gate in hooks:
        found = [i for i, hook in enumerate(registered) if _belongs_to(hook, limiter)]
        if len(found) != 1:  # a Flask-Limiter that registers its hooks otherwise: fail at start
            raise RuntimeError(f"expected one Flask-Limiter hook per list, found {len(found)}")
        registered[found[0]] = gate(registered[found[0]])


def _belongs_to(hook: Callable[..., Any], limiter: Limiter) -> bool:
    if isinstance(hook, partial):  # its after_request hook: partial(Limiter.__inject_headers, self)
        return hook.args[:1] == (limiter,)
    return getattr(hook, "__self__", None) is limiter


def _unless_limited(otherwise: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hook wrapper: the limiter's hook for an endpoint of LIMITS, `otherwise` for any other."""

    def gate(hook: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(hook)
        def gated(*args: Any) -> Any:
            return (hook if request.endpoint in LIMITS else otherwise)(*args)

        return gated

    return gate


def in_fallback(limiter: Limiter) -> bool:
    """Whether the limiter counts in process memory because its storage is unreachable (the
    strategy in use then holds another storage than the configured one)."""
    return limiter.limiter.storage is not limiter.storage


class FallbackWatch:
    """Turns the limiter's switch to (and back from) in-process counters into a warning, a
    metric and an info line, once per switch rather than once per request."""

    def __init__(self, limiter: Limiter):
        self.limiter = limiter
        self.degraded = False
        self._lock = threading.Lock()

    def check(self) -> None:
        if not self.limiter.initialized or not self.limiter.enabled:
            return
        now = in_fallback(self.limiter)
        if now == self.degraded:  # no switch (every request but one): no lock taken
            return
        with self._lock:
            changed, self.degraded = now != self.degraded, now
        if changed and now:
            RATELIMIT_FALLBACKS.inc()
            log.warning("rate-limit storage (REDIS_URL) unreachable: counting in this process "
                        "until it answers again; limits are per process meanwhile")
        elif changed:
            log.info("rate-limit storage reachable again: counters are shared once more")
