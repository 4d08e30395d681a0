"""Settings of Meta's webhooks (read by config.Config), and the verify token production needs.
Each setting has its comment; no I/O beyond the variables."""

from __future__ import annotations

DEV_SECRET_PREFIX = "dev-insecure-"  # noqa: S105  (config.py's prefix of old development values)
PLAN_VERIFY_TOKEN = "token_aleatorio_para_webhooks"  # noqa: S105  (the plan's public example, step 2.1)


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def webhook_settings(get, app_env: str, verify_token: str) -> dict:
    """The webhook settings from the environment (`get` reads one variable)."""
    return {
        # Meta's webhooks (/webhooks/meta): on outside production; in production when a verify
        # token is set (or asked for), and then the token must be strong.
        "META_WEBHOOKS_ENABLED": _bool(get("META_WEBHOOKS_ENABLED"),
                                       app_env != "production" or bool(verify_token)),
        # Whether META_WEBHOOKS_ENABLED was set at all (production checks the token then).
        "META_WEBHOOKS_ASKED": bool(get("META_WEBHOOKS_ENABLED")),
        # After storing a delivery, this process routes and forwards it at once (a thread); off,
        # only the `meta.webhooks` job does (e.g. in a dedicated `flask jobs run` process).
        "WEBHOOK_WAKE": _bool(get("WEBHOOK_WAKE"), True),
        # Minutes between two checks that Meta still sends the app's Page leadgen webhooks here
        # (Meta unsubscribes an app whose callback fails for 8 hours); one process checks each time.
        "WEBHOOK_SUBSCRIPTION_CHECK_MINUTES": float(get("WEBHOOK_SUBSCRIPTION_CHECK_MINUTES") or 15),
        # When that check finds the subscription gone (or lacking leadgen), ask Meta to subscribe
        # again (what `flask meta doctor --subscribe` does): the check runs in this server, so the
        # callback Meta verifies is up. Off, an operator must run that command.
        "META_WEBHOOKS_AUTO_RESUBSCRIBE": _bool(get("META_WEBHOOKS_AUTO_RESUBSCRIBE"), True),
        # Largest webhook body accepted (bytes): Meta's largest payload is 3 MB.
        "META_WEBHOOK_MAX_BYTES": int(get("META_WEBHOOK_MAX_BYTES") or 3 * 1024 * 1024),
        # Seconds a process trusts its asset -> tenant index (a miss re-reads it, at most 1/s).
        "WEBHOOK_ROUTING_CACHE_SECONDS": float(get("WEBHOOK_ROUTING_CACHE_SECONDS") or 30),
        # Events to the CRM: hours of retries (backoff) before a dead letter...
        "WEBHOOK_FORWARD_RETRY_HOURS": float(get("WEBHOOK_FORWARD_RETRY_HOURS") or 24),
        # ...the first wait and the longest wait between two attempts (seconds)...
        "WEBHOOK_FORWARD_RETRY_BASE_SECONDS": float(get("WEBHOOK_FORWARD_RETRY_BASE_SECONDS") or 5),
        "WEBHOOK_FORWARD_RETRY_MAX_SECONDS": float(get("WEBHOOK_FORWARD_RETRY_MAX_SECONDS") or 3600),
        # ...and the seconds one POST to the CRM may take.
        "WEBHOOK_FORWARD_TIMEOUT": float(get("WEBHOOK_FORWARD_TIMEOUT") or 10),
    }


def weak_verify_token(token: str) -> str:
    """Why a webhook verify token is unfit for production ('' when it is fine)."""
    if not token:
        return "is missing"
    if token == PLAN_VERIFY_TOKEN or token.startswith(DEV_SECRET_PREFIX):
        return "is a published example value"
    if len(token) < 24 or len(set(token)) < 8:
        return "is weak (use 24+ random characters)"
    return ""


def webhook_problem(config) -> str:
    """The one line production refuses to start with, or ''."""
    if config.APP_ENV != "production" or not config.META_WEBHOOKS_ENABLED:
        return ""
    if not (config.META_WEBHOOKS_ASKED or config.META_VERIFY_TOKEN):
        return ""  # on by a non-production default (a test's override): nothing was asked
    weak = weak_verify_token(config.META_VERIFY_TOKEN)
    return f"META_VERIFY_TOKEN {weak} (needed with META_WEBHOOKS_ENABLED)" if weak else ""
