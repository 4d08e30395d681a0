"""What the Graph serves: node types, their fields, default fields, edges and permissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BIZ = ("business_management",)
ADS = ("ads_management", "ads_read")
PAGES = ("pages_show_list", "pages_read_engagement")
WHATSAPP = ("whatsapp_business_management",)
INSTAGRAM = ("instagram_basic",)

BIZ_ERROR = ("(#200) Requires business_management permission to manage the object", 200)
ADS_ERROR = ("(#200) Ad account owner has NOT grant ads_management or ads_read permission", 200)
PAGES_ERROR = (
    "(#10) This endpoint requires the 'pages_read_engagement' or 'pages_show_list' permission",
    10,
)
WHATSAPP_ERROR = (
    "(#200) Requires whatsapp_business_management permission to manage the object",
    200,
)

INSTAGRAM_ERROR = ("(#10) Application does not have permission for this action", 10)


def _objects(ids_of: Callable[[Any, dict], list[str]]):
    def items(ctx, parent: dict[str, Any]) -> list[dict[str, Any]]:
        objects = ctx.sandbox.fixtures.objects
        return [objects[i] for i in ids_of(ctx, parent)]

    return items


GET_ONLY = ("GET",)


def _read_only(ctx, obj: dict, method: str, params: dict) -> Any:  # pragma: no cover - guarded
    raise NotImplementedError(f"{method} is not declared for this node or edge")


@dataclass(frozen=True)
class Edge:
    """A connection from a node to a list of nodes.

    `methods`: the HTTP methods Meta documents for the edge; any other is refused with Meta's
    "Unsupported <method> request" (code 100, subcode 33). An edge that accepts more than GET
    (e.g. POST to an ad account's `campaigns`) gives `write(ctx, parent, method, params)`.
    """

    target: str
    items: Callable[[Any, dict], list[dict]]
    needs: tuple[tuple[str, ...], ...] = ()
    error: tuple[str, int] = BIZ_ERROR
    data_access_scope: str | None = None
    methods: tuple[str, ...] = GET_ONLY
    write: Callable[[Any, dict, str, dict], Any] = _read_only


@dataclass(frozen=True)
class NodeType:
    """Fields a node type has, which it returns by default, and its edges."""

    fields: frozenset[str]
    default: tuple[str, ...]
    edge_default: tuple[str, ...]
    edges: dict[str, Edge] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    needs: tuple[tuple[str, ...], ...] = ()
    error: tuple[str, int] = BIZ_ERROR
    data_access_scope: str | None = None
    methods: tuple[str, ...] = GET_ONLY  # as Edge.methods, for the node itself
    write: Callable[[Any, dict, str, dict], Any] = _read_only


_AD_ACCOUNT_FIELDS = frozenset(
    [
        "id",
        "account_id",
        "name",
        "account_status",
        "disable_reason",
        "currency",
        "timezone_name",
        "timezone_offset_hours_utc",
        "amount_spent",
        "balance",
        "spend_cap",
        "created_time",
        "business",
        "owner",
    ]
)

TYPES: dict[str, NodeType] = {
    "User": NodeType(
        fields=frozenset({"id", "name", "first_name", "last_name", "short_name"}),
        default=("id", "name"),
        edge_default=("id", "name"),
        edges={
            "businesses": Edge("Business", _objects(lambda c, p: c.access["businesses"]), (BIZ,)),
            "adaccounts": Edge(
                "AdAccount", _objects(lambda c, p: c.access["ad_accounts"]), (ADS,), ADS_ERROR
            ),
            # Accounts the person holds outside any business (Meta's User edge of that name).
            "personal_ad_accounts": Edge(
                "AdAccount", _objects(lambda c, p: c.access["personal_ad_accounts"]), (ADS,), ADS_ERROR
            ),
            "accounts": Edge("Page", _objects(lambda c, p: c.access["pages"]), (PAGES,), PAGES_ERROR),
        },
    ),
    "Business": NodeType(
        fields=frozenset({"id", "name", "verification_status", "created_time", "updated_time", "link"}),
        default=("id", "name"),
        edge_default=("id", "name"),
        objects={"primary_page": "Page"},
        needs=(BIZ,),
        edges={
            "owned_ad_accounts": Edge(
                "AdAccount", _objects(lambda c, p: p["_owned_ad_accounts"]), (BIZ, ADS), ADS_ERROR
            ),
            "client_ad_accounts": Edge(
                "AdAccount", _objects(lambda c, p: p["_client_ad_accounts"]), (BIZ, ADS), ADS_ERROR
            ),
            "owned_whatsapp_business_accounts": Edge(
                "WhatsAppBusinessAccount",
                _objects(lambda c, p: p["_owned_wabas"]),
                (BIZ, WHATSAPP),
                WHATSAPP_ERROR,
                "whatsapp_business_management",
            ),
            "client_whatsapp_business_accounts": Edge(
                "WhatsAppBusinessAccount",
                _objects(lambda c, p: p["_client_wabas"]),
                (BIZ, WHATSAPP),
                WHATSAPP_ERROR,
                "whatsapp_business_management",
            ),
            "owned_pages": Edge("Page", _objects(lambda c, p: p["_owned_pages"]), (BIZ, PAGES), PAGES_ERROR),
        },
    ),
    "AdAccount": NodeType(
        fields=_AD_ACCOUNT_FIELDS,
        default=("account_id", "id"),
        edge_default=("account_id", "id"),
        objects={"business": "BusinessRef"},
        needs=(ADS,),
        error=ADS_ERROR,
    ),
    "BusinessRef": NodeType(
        fields=frozenset({"id", "name"}), default=("id", "name"), edge_default=("id", "name")
    ),
    "Page": NodeType(
        fields=frozenset(
            {"id", "name", "category", "category_list", "tasks", "fan_count", "link", "access_token"}
        ),
        default=("name", "id"),
        edge_default=("access_token", "category", "category_list", "name", "id", "tasks"),
        objects={"instagram_business_account": "InstagramAccount"},
        needs=(PAGES,),
        error=PAGES_ERROR,
    ),
    # The Instagram professional account linked to a Page (Page field instagram_business_account).
    "InstagramAccount": NodeType(
        fields=frozenset({"id", "username", "name", "followers_count", "profile_picture_url"}),
        default=("id",),
        edge_default=("id",),
        needs=(INSTAGRAM,),
        error=INSTAGRAM_ERROR,
    ),
    "WhatsAppBusinessAccount": NodeType(
        fields=frozenset(
            {"id", "name", "currency", "timezone_id", "message_template_namespace", "account_review_status"}
        ),
        default=("id", "name"),
        edge_default=("id", "name"),
        edges={
            "phone_numbers": Edge(
                "PhoneNumber",
                _objects(lambda c, p: p["_phone_numbers"]),
                (WHATSAPP,),
                WHATSAPP_ERROR,
                "whatsapp_business_management",
            )
        },
        needs=(WHATSAPP,),
        error=WHATSAPP_ERROR,
        data_access_scope="whatsapp_business_management",
    ),
    "PhoneNumber": NodeType(
        fields=frozenset({"id", "display_phone_number", "verified_name", "quality_rating"}),
        default=("id", "display_phone_number", "verified_name"),
        edge_default=("id", "display_phone_number", "verified_name", "quality_rating"),
        needs=(WHATSAPP,),
        error=WHATSAPP_ERROR,
        data_access_scope="whatsapp_business_management",
    ),
}
