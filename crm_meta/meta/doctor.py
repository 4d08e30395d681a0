"""`flask meta doctor`: check the configured Meta app before going live, one line per check.

Every check talks to the configured Meta (real or sandbox) through the GraphClient, or reads
the configuration; each failure comes with the fix. No token, no secret is ever printed.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from crm_meta.meta.errors import GraphError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.types import JsonObject
from crm_meta.meta.versions import MARKETING_SUNSETS, RETIRED, SUNSETS, newest, upgrade_warning

CALLBACK_PATH = "/crm/auth/meta/callback"
CLOCK_TOLERANCE_SECONDS = 60
LOGIN_CONFIG_ID = re.compile(r"^\d{6,25}$")
# Permission names Meta documents (Permissions Reference) that this kind of app may ask for.
KNOWN_PERMISSIONS = frozenset({
    "public_profile", "email", "ads_management", "ads_read", "business_management",
    "whatsapp_business_management", "whatsapp_business_messaging", "pages_show_list",
    "pages_read_engagement", "pages_manage_metadata", "pages_manage_posts", "pages_manage_ads",
    "pages_messaging", "pages_read_user_content", "pages_manage_engagement", "read_insights",
    "leads_retrieval", "catalog_management", "instagram_basic", "instagram_manage_insights",
    "instagram_content_publish", "instagram_manage_comments", "instagram_manage_messages",
    "attribution_read", "page_events", "private_computation_access",
})


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def line(self) -> str:
        head = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return head if self.ok or not self.fix else f"{head}\n     fix: {self.fix}"


def run(graph: GraphClient, config: Mapping[str, Any], *, now: datetime | None = None) -> list[Check]:
    """Every check, in order; later ones are skipped (failed) when Meta cannot be reached."""
    checks = [_reachable(graph)]
    if checks[0].ok:
        token_check, headers = _app_token(graph)
        checks += [token_check, _version(graph, headers), _marketing_version(graph, headers, now),
                   _clock(headers, now)]
    else:
        skipped = "not checked: Meta is unreachable"
        checks += [Check(name, False, skipped, "fix the reachability first")
                   for name in ("app credential", "graph version", "marketing version", "clock")]
    checks += [_redirect_uri(config), _scopes(config), _login_config(config)]
    return checks


def report(checks: list[Check]) -> JsonObject:
    """The --json document."""
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


# -- the checks ------------------------------------------------------------------------------
def _reachable(graph: GraphClient) -> Check:
    host = urlsplit(graph.base_url).hostname or ""
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return Check("reachable", False, f"the name {host} does not resolve (DNS)",
                     "check META_GRAPH_URL and this machine's DNS / outbound network")
    try:
        status, _ = graph.ping()
    except GraphError as exc:
        scheme = urlsplit(graph.base_url).scheme
        return Check("reachable", False, f"{host}: {exc.message}",
                     "check the firewall / proxy to Meta" + (
                         " and the system's CA certificates" if scheme == "https" else ""))
    tls = " over TLS" if graph.base_url.startswith("https://") else " (no TLS: sandbox or test only)"
    return Check("reachable", True, f"{host} answers{tls} (HTTP {status})")


def _app_token(graph: GraphClient) -> tuple[Check, dict[str, str]]:
    name = "app credential"
    try:
        body = graph.get("debug_token", token=graph.app_token, input_token=graph.app_token)
    except GraphError as exc:
        headers = graph.last_headers()
        if exc.kind in ("transient", "throttled"):
            return Check(name, False, f"Meta could not answer ({exc.kind}, code {exc.code})",
                         "run the doctor again in a few minutes"), headers
        return Check(name, False, f"Meta refuses the app's credential: {exc.message} "
                                  f"(code {exc.code}, trace {exc.fbtrace_id})",
                     "copy the App ID and App Secret from the Meta app dashboard (App settings > "
                     "Basic) into META_APP_ID and META_APP_SECRET; a reset secret must be copied "
                     "again"), headers
    headers = graph.last_headers()
    data = (body.get("data") or {}) if isinstance(body, dict) else {}
    if not data.get("is_valid") or str(data.get("app_id")) != str(graph.app_id):
        return Check(name, False, f"the app token is not valid for app {graph.app_id}",
                     "META_APP_ID must be the numeric App ID of the app whose secret is set"), headers
    return Check(name, True, f"Meta accepts the app token of app {graph.app_id}"), headers


def _version(graph: GraphClient, headers: dict[str, str]) -> Check:
    version = graph.version
    served = _header(headers, "facebook-api-version")
    if version in RETIRED or (served and served != version):
        return Check("graph version", False,
                     f"{version} is retired: Meta answers with {served or 'another version'}",
                     f"set META_GRAPH_API_VERSION to a current version (e.g. {newest(_today())})")
    if version not in SUNSETS:
        return Check("graph version", False, f"{version} is not a version this service knows",
                     f"set META_GRAPH_API_VERSION to a current version (e.g. {newest(_today())})")
    sunset = SUNSETS[version]
    if sunset is None:
        return Check("graph version", True, f"{version} is served; no sunset announced")
    days = (sunset - datetime.now(UTC).date()).days
    if days < 0:
        return Check("graph version", False, f"{version} was retired on {sunset}",
                     "set META_GRAPH_API_VERSION to a current version")
    return Check("graph version", True, f"{version} is served; {days} days to its sunset ({sunset})")


def _today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).date()


def _marketing_version(graph: GraphClient, headers: dict[str, str], now: datetime | None) -> Check:
    """The Marketing API's own calendar (ads, insights): its versions retire long before Graph's."""
    version, today = graph.version, _today(now)
    use = newest(today)
    warned = upgrade_warning(headers)
    if warned:
        return Check("marketing version", False, f"Meta auto-upgraded a Marketing call: {warned}",
                     f"set META_GRAPH_API_VERSION to {use}")
    if version not in MARKETING_SUNSETS:
        return Check("marketing version", False, f"{version} is not a Marketing API version this "
                     "service knows", f"set META_GRAPH_API_VERSION to {use}")
    sunset = MARKETING_SUNSETS[version]
    if sunset is None:
        return Check("marketing version", True, f"{version} is served; no Marketing API expiry announced")
    days = (sunset - today).days
    if days < 0:
        return Check("marketing version", False, f"the Marketing API retired {version} on {sunset}: "
                     "ads and insights calls are refused (#2635) or upgraded",
                     f"set META_GRAPH_API_VERSION to {use}")
    return Check("marketing version", True, f"{version} is served for Marketing API calls; {days} days "
                 f"to its expiry ({sunset}), then {use}")


def _clock(headers: dict[str, str], now: datetime | None) -> Check:
    raw = _header(headers, "date")
    try:
        theirs = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError):
        theirs = None
    if theirs is None:
        return Check("clock", False, "Meta's answer carried no Date header to compare with",
                     "run the doctor again; check that no proxy strips the Date header")
    skew = ((now or datetime.now(UTC)) - theirs).total_seconds()
    if abs(skew) > CLOCK_TOLERANCE_SECONDS:
        return Check("clock", False, f"this server's clock is {skew:+.0f}s off Meta's",
                     "synchronise the clock (NTP): appsecret_time and token expiries depend on it")
    return Check("clock", True, f"within {abs(skew):.0f}s of Meta's Date header")


def _redirect_uri(config: Mapping[str, Any]) -> Check:
    uri = config.get("META_REDIRECT_URI") or ""
    parts = urlsplit(uri)
    production = config.get("APP_ENV") == "production"
    if production and parts.scheme != "https":
        return Check("redirect uri", False, f"{uri} is not https",
                     "Meta accepts only https redirect URIs for live apps: set META_REDIRECT_URI "
                     f"to https://<your host>{CALLBACK_PATH}")
    if parts.path != CALLBACK_PATH or parts.query or parts.fragment:
        return Check("redirect uri", False, f"{uri} is not the callback this app serves",
                     f"set META_REDIRECT_URI to <public base URL>{CALLBACK_PATH} and register it, "
                     "exactly, in the Meta app's Valid OAuth Redirect URIs")
    base = (config.get("API_BASE_URL") or "").rstrip("/")
    if base and uri != base + CALLBACK_PATH:
        return Check("redirect uri", False, f"{uri} is not on API_BASE_URL ({base})",
                     f"set META_REDIRECT_URI to {base}{CALLBACK_PATH}")
    return Check("redirect uri", True, f"{uri} is the callback this app serves")


def _scopes(config: Mapping[str, Any]) -> Check:
    if config.get("META_LOGIN_CONFIG_ID"):
        return Check("scopes", True, "Facebook Login for Business: the configuration sets them")
    scopes = list(config.get("META_SCOPES") or [])
    unknown = [s for s in scopes if s not in KNOWN_PERMISSIONS]
    if unknown:
        return Check("scopes", False, f"unknown permission name(s): {', '.join(unknown)}",
                     "META_SCOPES takes Meta permission names, comma-separated (see Meta's "
                     "Permissions Reference)")
    if not scopes:
        return Check("scopes", False, "no scope is requested", "set META_SCOPES")
    return Check("scopes", True, ", ".join(scopes))


def _login_config(config: Mapping[str, Any]) -> Check:
    value = config.get("META_LOGIN_CONFIG_ID") or ""
    if not value:
        return Check("login config", True, "not set: the dialog asks for META_SCOPES")
    if not LOGIN_CONFIG_ID.match(value):
        return Check("login config", False, f"{value!r} does not look like a configuration id",
                     "copy the numeric Configuration ID from Facebook Login for Business > "
                     "Configurations in the Meta app dashboard")
    return Check("login config", True, f"configuration {value}")


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
