"""The app-level subscription Meta needs before it sends any webhook: `/{app-id}/subscriptions`,
object `page`, field `leadgen`, this server's verified callback URL (checked by `flask meta
doctor`, made by `flask meta doctor --subscribe`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from crm_meta.meta.doctor import Check
from crm_meta.meta.errors import GraphError
from crm_meta.meta.graph import GraphClient

OBJECT, FIELD, PATH = "page", "leadgen", "/webhooks/meta"


def callback_url(config: Mapping[str, Any]) -> str:
    """This server's webhook URL: API_BASE_URL, or the origin of META_REDIRECT_URI."""
    base = config.get("API_BASE_URL") or ""
    if not base:
        parts = urlsplit(config["META_REDIRECT_URI"])
        base = f"{parts.scheme}://{parts.netloc}"
    return base.rstrip("/") + PATH


def listed(graph: GraphClient, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The app's Page subscription as Meta lists it now (None: there is none). A Meta error
    propagates (GraphError): no verdict either way."""
    found = graph.get(f"{config['META_APP_ID']}/subscriptions", token=graph.app_token).get("data", [])
    return next((s for s in found if s.get("object") == OBJECT), None)


def elsewhere(page: dict[str, Any] | None, config: Mapping[str, Any]) -> bool:
    """Whether the Page subscription sends its events to another URL than this server's."""
    return page is not None and page.get("callback_url") != callback_url(config)


def verdict(page: dict[str, Any] | None, config: Mapping[str, Any]) -> Check:
    """Whether `page` (listed) sends this app's Pages' leads to this server."""
    name, url = "webhook subscription", callback_url(config)
    fields = {f.get("name") if isinstance(f, dict) else f for f in (page or {}).get("fields", [])}
    if page and page.get("active", True) and FIELD in fields and page.get("callback_url") == url:
        return Check(name, True, f"Meta sends Page leadgen events to {url}")
    what = "no Page subscription" if page is None else (
        f"the Page subscription goes to {page.get('callback_url')}" if elsewhere(page, config)
        else "the Page subscription lacks the leadgen field")
    return Check(name, False, what, "run `flask meta doctor --subscribe` (needs META_VERIFY_TOKEN "
                 "and this server reachable by Meta), or subscribe in the App Dashboard")


def observe(graph: GraphClient, config: Mapping[str, Any]) -> Check:
    """Whether Meta sends this app's Pages' leads to this server, as Meta lists it now. A Meta
    error propagates (GraphError): no verdict either way."""
    return verdict(listed(graph, config), config)


def subscribe_here(graph: GraphClient, config: Mapping[str, Any]) -> Check:
    """Ask Meta to send this app's Page leadgen events to this server (`flask meta doctor
    --subscribe` and the watch's automatic re-subscription). Meta first verifies the callback (a
    GET with the verify token), so this server must be reachable; a refusal keeps Meta's message."""
    name, url = "webhook subscription", callback_url(config)
    if not config.get("META_VERIFY_TOKEN"):
        return Check(name, False, "cannot subscribe without META_VERIFY_TOKEN", "set META_VERIFY_TOKEN")
    try:
        graph.call("POST", f"{config['META_APP_ID']}/subscriptions", token=graph.app_token, params={
            "object": OBJECT, "callback_url": url, "fields": FIELD,
            "verify_token": config["META_VERIFY_TOKEN"], "include_values": "true"})
    except GraphError as exc:
        return _refused(exc)
    return Check(name, True, f"subscribed: Meta now sends Page leadgen events to {url}")


def check(graph: GraphClient, config: Mapping[str, Any], *, subscribe: bool = False) -> Check:
    """Whether Meta sends this app's Pages' leads to this server; with `subscribe`, ask it to."""
    try:
        seen = observe(graph, config)
    except GraphError as exc:
        return _refused(exc)
    return seen if seen.ok or not subscribe else subscribe_here(graph, config)


def _refused(exc: GraphError) -> Check:
    return Check("webhook subscription", False, f"Meta refused: {exc.message}",
                 "check that Meta can reach the callback URL and that the verify token matches")
