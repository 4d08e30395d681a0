"""Graph node types, their fields and edges, permission rules and rendering with paging."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import GraphRefusal, bad_param, permission_error
from .fields import FieldSpec
from .schema import TYPES
from .tokens import TokenRecord, needs_data_access

# Chosen error once data access has lapsed (Meta: token valid, data calls fail until
# the user passes the dialog again with auth_type=reauthorize).
DATA_ACCESS_MESSAGE = (
    "(#200) Data access for this user has expired. The user must reauthorize the app "
    "(auth_type=reauthorize) to restore access to {scope} data."
)


@dataclass
class Context:
    """What rendering needs: the caller's token, the clock and how to build paging URLs."""

    sandbox: Any
    token: TokenRecord
    now: datetime
    version: str
    link: Callable[[str, list[tuple[str, str]]], str]  # (path, params) -> full URL
    auth_params: list[tuple[str, str]]
    business_ids: list[str] = field(default_factory=list)

    @property
    def access(self) -> dict[str, list[str]]:
        return self.sandbox.fixtures.access(self.token.user_id, self.token.grant.business_ids)

    def require(self, needs: tuple[tuple[str, ...], ...], error: tuple[str, int]) -> None:
        granted = self.token.grant.granted
        for group in needs:
            if not granted.intersection(group):
                raise permission_error(*error)

    def require_data_access(self, scope: str) -> None:
        if needs_data_access(scope) and self.token.grant.data_access_expired(self.now):
            raise GraphRefusal(
                DATA_ACCESS_MESSAGE.format(scope=scope),
                200,
                status=403,
                user_title="Data access expired",
                user_msg="Log in again to keep using this app with your data.",
            )

    def page_token(self, page: dict[str, Any]) -> str | None:
        if self.token.kind == "PAGE" or page["id"] not in self.access["pages"]:
            return None
        return self.sandbox.store.page_token(self.token, page["id"], self.now)


def visible(ctx: Context, obj: dict[str, Any]) -> bool:
    """Whether the caller's token may see this object at all."""
    kind, obj_id = obj["_type"], obj["id"]
    if ctx.token.kind == "PAGE":
        return obj_id == ctx.token.page_id
    access = ctx.access
    if kind == "User":
        return obj_id == ctx.token.user_id
    if kind == "Business":
        return obj_id in access["businesses"]
    if kind == "AdAccount":
        return obj_id in access["ad_accounts"]
    if kind == "Page":
        return obj_id in access["pages"]
    if kind in ("WhatsAppBusinessAccount", "PhoneNumber"):
        return obj.get("_business_id") in access["businesses"]
    if kind == "InstagramAccount":
        return obj.get("_page_id") in access["pages"]
    return False


def check_node(ctx: Context, obj: dict[str, Any]) -> None:
    """Permission and data-access checks for reading a node itself."""
    node_type = TYPES[obj["_type"]]
    if ctx.token.kind != "PAGE":
        ctx.require(node_type.needs, node_type.error)
    if node_type.data_access_scope:
        ctx.require_data_access(node_type.data_access_scope)


def _unknown_field(name: str, type_name: str) -> GraphRefusal:
    shown = "Business" if type_name == "BusinessRef" else type_name
    return bad_param(f"(#100) Tried accessing nonexisting field ({name}) on node type ({shown})")


def render(
    ctx: Context, obj: dict[str, Any], specs: list[FieldSpec] | None, in_edge: bool = False
) -> dict[str, Any]:
    """The JSON of one object with the requested (or default) fields."""
    type_name = obj["_type"]
    node_type = TYPES[type_name]
    if specs is None:
        names = node_type.edge_default if in_edge else node_type.default
        specs = [FieldSpec(name) for name in names]
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name in node_type.edges:
            out[name] = render_edge(
                ctx, obj, name, spec.modifiers, spec.children, nested_link(ctx, obj, name, spec)
            )
        elif name in node_type.objects:
            ref = obj.get(name)
            if ref is not None:
                out[name] = render(ctx, ref, spec.children)
        elif type_name == "User" and name == "permissions":
            out[name] = {"data": permissions(ctx)}
        elif name == "access_token" and type_name == "Page":
            token = ctx.page_token(obj)
            if token:
                out[name] = token
        elif name in node_type.fields:
            if obj.get(name) is not None:
                out[name] = obj[name]
        else:
            raise _unknown_field(name, type_name)
    if "id" in obj and "id" not in out:
        out["id"] = obj["id"]
    return out


def permissions(ctx: Context) -> list[dict[str, str]]:
    """/me/permissions items: granted (or expired once data access lapsed), declined."""
    grant = ctx.token.grant
    lapsed = grant.data_access_expired(ctx.now)
    ordered = sorted(grant.granted, key=lambda p: (p != "public_profile", p))
    data = [
        {"permission": p, "status": "expired" if lapsed and needs_data_access(p) else "granted"}
        for p in ordered
    ]
    data += [{"permission": p, "status": "declined"} for p in sorted(grant.declined)]
    return data


def encode_cursor(obj_id: str) -> str:
    """An opaque cursor pointing at one item."""
    return base64.urlsafe_b64encode(f"sbx:{obj_id}".encode()).decode().rstrip("=")


_START = "\x00start"  # cursor id meaning "before the first item" (empty first page quirk)


def _decode_cursor(cursor: str, ids: list[str]) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    obj_id = raw[4:] if raw.startswith("sbx:") else None
    if obj_id == _START:
        return -1
    if obj_id not in ids:
        raise bad_param("(#100) The cursor is invalid or does not belong to this list")
    return ids.index(obj_id)


def page_limit(ctx: Context, raw: str | None) -> int:
    """The page size asked for, capped like Meta caps it."""
    if raw in (None, ""):
        return ctx.sandbox.config["default_limit"]
    try:
        value = int(raw)
    except ValueError:
        raise bad_param("(#100) Param limit must be a number") from None
    return max(1, min(value, ctx.sandbox.config["max_limit"]))


def nested_link(ctx: Context, parent: dict[str, Any], edge: str, spec: FieldSpec):
    """URL builder for a nested edge's paging: the edge's own Graph URL."""
    path = f"/{ctx.version}/{parent['id']}/{edge}"
    fields = [("fields", spec.children_raw)] if spec.children_raw else []

    def link(extra: list[tuple[str, str]]) -> str:
        return ctx.link(path, ctx.auth_params + fields + extra)

    return link


def render_edge(
    ctx: Context,
    parent: dict[str, Any],
    name: str,
    modifiers: dict[str, str],
    children: list[FieldSpec] | None,
    link: Callable[[list[tuple[str, str]]], str],
) -> dict[str, Any]:
    """{"data": [...], "paging": {...}} for one edge, with Meta's cursor paging."""
    edge = TYPES[parent["_type"]].edges[name]
    if ctx.token.kind == "PAGE":
        raise _unknown_field(name, parent["_type"])
    ctx.require(edge.needs, edge.error)
    if edge.data_access_scope:
        ctx.require_data_access(edge.data_access_scope)
    items = edge.items(ctx, parent)
    limit = page_limit(ctx, modifiers.get("limit"))
    ids = [item["id"] for item in items]
    if modifiers.get("after"):
        start = _decode_cursor(modifiers["after"], ids) + 1
    elif modifiers.get("before"):
        start = max(0, _decode_cursor(modifiers["before"], ids) - limit)
    else:
        start = 0
        if items and ctx.sandbox.config["empty_first_page"]:
            # Observed at Meta: a page can be empty and still have `next`.
            marker = encode_cursor(_START)
            return {
                "data": [],
                "paging": {
                    "cursors": {"before": marker, "after": marker},
                    "next": link([("limit", str(limit)), ("after", marker)]),
                },
            }
    chunk = items[start : start + limit]
    result: dict[str, Any] = {"data": [render(ctx, item, children, in_edge=True) for item in chunk]}
    if chunk:
        first, last = encode_cursor(chunk[0]["id"]), encode_cursor(chunk[-1]["id"])
        paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
        if start > 0:
            paging["previous"] = link([("limit", str(limit)), ("before", first)])
        if start + limit < len(items):
            paging["next"] = link([("limit", str(limit)), ("after", last)])
        result["paging"] = paging
    if modifiers.get("summary", "").lower() in ("true", "1", "total_count"):
        result["summary"] = {"total_count": len(items)}
    return result
