"""The rules a configuration must pass: in every environment, and what production refuses beyond a
missing or development value (weak signing secrets, an encryption key not in its documented
format, a Meta callback over plain http). Each problem is one line naming the variable
(config.Config.validate raises it), never a secret's value."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from crm_meta.meta.exposure import allowed_from

# The floor for the signing secrets: JWT_SECRET_KEY is shared with CRM Ventas, so a short one
# lets anyone mint an admin token for any tenant.
MIN_SECRET_BYTES = 32
SIGNING_SECRETS = ("SECRET_KEY", "JWT_SECRET_KEY")
KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
# An exact web origin: scheme, host, optional port; nothing else (never a wildcard).
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def general_problem(config) -> str | None:
    """The first unsafe setting of any environment, as one line; None if none."""
    if config.META_MODE not in {"live", "sandbox"}:
        return f"META_MODE must be 'live' or 'sandbox', not {config.META_MODE!r}"
    if not 0 < config.META_GOVERNOR_THRESHOLD <= 100:
        return "META_GOVERNOR_THRESHOLD must be a percent above 0 and at most 100"
    try:
        allowed_from(tuple(config.META_PROXY_ALLOWED_PATHS))
    except ValueError as exc:
        return f"META_PROXY_ALLOWED_PATHS: {exc} (see crm_meta/meta/exposure.py)"
    if config.LOG_FORMAT not in {"text", "json"}:
        return f"LOG_FORMAT must be 'text' or 'json', not {config.LOG_FORMAT!r}"
    if config.NOTIFY_WEBHOOK_URL and len(config.NOTIFY_WEBHOOK_SECRET) < 16:
        return "NOTIFY_WEBHOOK_SECRET (16+ characters) is required with NOTIFY_WEBHOOK_URL"
    for origin in config.CRM_ORIGINS:
        if not ORIGIN.fullmatch(origin):
            return (f"CRM_ORIGINS: {origin!r} is not an exact origin like "
                    "https://crm.example.com (no '*', no path); credentials need one")
    if not config.JWT_SUBJECT_CLAIMS:
        return "JWT_SUBJECT_CLAIMS must name at least one claim"
    return None


def is_key_format(value: str) -> bool:
    """ENCRYPTION_KEY's documented format: 32 bytes in urlsafe base64 (padding optional)."""
    if not KEY_TEXT.fullmatch(value):
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == 32
    except (binascii.Error, ValueError):
        return False


def production_problem(env: Mapping[str, str]) -> str | None:
    """The first thing production must refuse in these variables, as one line; None if none."""
    for name in SIGNING_SECRETS:
        if len(env.get(name, "").encode()) < MIN_SECRET_BYTES:
            return (f"{name} must be at least {MIN_SECRET_BYTES} bytes when APP_ENV=production "
                    "(python -c \"import secrets; print(secrets.token_urlsafe(48))\")")
    if not is_key_format(env.get("ENCRYPTION_KEY", "")):
        return ("ENCRYPTION_KEY must be 32 random bytes in urlsafe base64 (44 characters) when "
                "APP_ENV=production; see docs/deploy.md")
    if not env.get("META_REDIRECT_URI", "").startswith("https://"):
        return "META_REDIRECT_URI must be an https:// URL when APP_ENV=production"
    return None
