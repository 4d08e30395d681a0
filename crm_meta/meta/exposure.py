"""What the services' Graph proxy lets through: a typed allow-list, and never a token.

The allow-list is typed: each Graph id is of a node kind (ad account, campaign, ad set, ad, ad
creative, lead form, lead, page, WhatsApp account, async report run, business, user), and each
kind has the edges and methods Meta gives it (`CAPABILITIES`, from Meta's Marketing API
reference). The setting enables some of them (`DEFAULT_ALLOWED`). An id's kind comes from what
the connection discovered (its user, businesses, pages, WhatsApp accounts); `act_<n>` is an ad
account; any other numeric id can only be one of the kinds discovery does not list
(`OBJECT_KINDS`), and the proxy admits what any of those may do (Meta decides the rest with the
tenant's own token). The person's user node and business nodes are never open by bare id.

Tokens: no capability names an edge that returns them, every field, nested field and alias of
`fields` is read (crm_meta.meta.fieldspec) and refused when it names a token or a page list, and
crm_meta.meta.scrub strips whatever Meta still sends (the second line of defence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from crm_meta.meta import fieldspec
from crm_meta.meta.errors import ProxyRefused
from crm_meta.models import MetaConnection

R, RW, RWD = frozenset({"GET"}), frozenset({"GET", "POST"}), frozenset({"GET", "POST", "DELETE"})
# (kind, edge) -> the methods Meta documents; "" is the node itself. Nothing here returns a token.
CAPABILITIES: dict[tuple[str, str], frozenset[str]] = {
    ("ad_account", ""): RW, ("ad_account", "campaigns"): RW, ("ad_account", "adsets"): RW,
    ("ad_account", "ads"): RW, ("ad_account", "adcreatives"): RW, ("ad_account", "insights"): RW,
    ("campaign", ""): RWD, ("campaign", "adsets"): R, ("campaign", "ads"): R, ("campaign", "insights"): RW,
    ("ad_set", ""): RWD, ("ad_set", "ads"): R, ("ad_set", "insights"): RW,
    ("ad", ""): RWD, ("ad", "insights"): RW, ("ad", "leads"): R, ("ad", "adcreatives"): R,
    ("ad_creative", ""): RWD,
    ("lead_form", ""): R, ("lead_form", "leads"): R,
    ("lead", ""): R,
    ("page", ""): R, ("page", "leadgen_forms"): R,
    # Messaging (issue 23): the Send API with the Page's own token, WhatsApp's Cloud API.
    ("page", "messages"): frozenset({"POST"}),
    ("phone_number", ""): R, ("phone_number", "messages"): frozenset({"POST"}),
    ("whatsapp_account", ""): R, ("whatsapp_account", "phone_numbers"): R,
    ("whatsapp_account", "message_templates"): R,
    ("async_report_run", ""): R, ("async_report_run", "insights"): R,
    ("business", "owned_ad_accounts"): R, ("business", "client_ad_accounts"): R,
}
KINDS = ("ad_account", "campaign", "ad_set", "ad", "ad_creative", "lead_form", "lead", "page",
         "whatsapp_account", "phone_number", "async_report_run", "business", "user")
# Kinds discovery does not list: a numeric id the connection does not know is one of these.
OBJECT_KINDS = ("campaign", "ad_set", "ad", "ad_creative", "lead_form", "lead", "async_report_run")
# What a CRM's marketing and lead services read and write (issue 19, item 8).
DEFAULT_ALLOWED = (
    "business/owned_ad_accounts", "business/client_ad_accounts",
    "ad_account", "ad_account/campaigns", "ad_account/adsets", "ad_account/ads", "ad_account/insights",
    "campaign", "campaign/adsets", "campaign/ads", "campaign/insights",
    "ad_set", "ad_set/ads", "ad_set/insights", "ad", "ad/insights", "ad/leads", "ad_creative",
    "async_report_run", "async_report_run/insights",
    "page", "page/leadgen_forms", "lead_form", "lead_form/leads", "lead",
    "whatsapp_account", "whatsapp_account/phone_numbers", "whatsapp_account/message_templates",
    "page/messages", "phone_number", "phone_number/messages",
)
# Edges and fields that hand out tokens (a page's access_token comes with every page list).
TOKEN_EDGES = frozenset({"accounts", "owned_pages", "client_pages", "assigned_pages", "promote_pages",
                         "pages"})
TOKEN_NAME = re.compile(r"token|appsecret|secret", re.IGNORECASE)
# An entry of the setting: `kind`, `kind/edge`, optionally `:GET|POST`.
ENTRY = re.compile(r"^([a-z_]+)(?:/([a-z_]+))?(?::([A-Z]+(?:\|[A-Z]+)*))?$")
AD_ACCOUNT = re.compile(r"^act_\d+$")

Allowed = dict[tuple[str, str], frozenset[str]]


@lru_cache(maxsize=16)
def allowed_from(entries: tuple[str, ...]) -> Allowed:
    """The setting's entries (`kind`, `kind/edge`, optionally `:GET|POST`) as (kind, edge) ->
    methods; ValueError naming the first entry that is not a capability."""
    result: Allowed = {}
    for entry in entries:
        match = ENTRY.match(entry.strip())
        key = (match.group(1), match.group(2) or "") if match else None
        if match is None or key not in CAPABILITIES:
            raise ValueError(f"{entry!r} is not a kind or kind/edge the proxy knows")
        methods = frozenset(match.group(3).split("|")) if match.group(3) else CAPABILITIES[key]
        if not methods <= CAPABILITIES[key]:
            raise ValueError(f"{entry!r}: Meta allows only {'|'.join(sorted(CAPABILITIES[key]))} there")
        result[key] = result.get(key, frozenset()) | methods
    return result


@dataclass(frozen=True)
class Known:
    """Ids the connection discovered, by kind."""

    users: frozenset[str] = frozenset()
    businesses: frozenset[str] = frozenset()
    pages: frozenset[str] = frozenset()
    whatsapp_accounts: frozenset[str] = frozenset()
    phone_numbers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, row: MetaConnection | None) -> Known:
        if row is None:
            return cls()
        businesses = row.business_managers or []
        return cls(
            users=frozenset([row.meta_user_id] if row.meta_user_id else []),
            businesses=frozenset(str(b["id"]) for b in businesses),
            pages=frozenset(str(p["id"]) for p in row.pages or []),
            whatsapp_accounts=frozenset(str(w["id"]) for b in businesses
                                        for w in b.get("whatsapp_business_accounts", [])),
            phone_numbers=frozenset(str(n["id"]) for b in businesses
                                    for w in b.get("whatsapp_business_accounts", [])
                                    for n in w.get("phone_numbers", [])),
        )


def kinds_of(node: str, known: Known) -> tuple[str, ...]:
    """The kinds a path's first segment can be."""
    if node == "me" or node in known.users:
        return ("user",)
    if AD_ACCOUNT.match(node):
        return ("ad_account",)
    if not (node.isascii() and node.isdigit()):
        return ()
    for kind, ids in (("business", known.businesses), ("page", known.pages),
                      ("whatsapp_account", known.whatsapp_accounts),
                      ("phone_number", known.phone_numbers)):
        if node in ids:
            return (kind,)
    return OBJECT_KINDS


def admit(method: str, path: str, params: list[tuple[str, str]], known: Known, allowed: Allowed) -> None:
    """Refuse (ProxyRefused) a call off the typed allow-list, or one that could read a token.

    `path` is normalised (no version, segments of letters, digits and _); `params` are the
    query's and the form's pairs."""
    segments = path.split("/")
    if len(segments) > 2 or any(TOKEN_NAME.search(s) or s in TOKEN_EDGES for s in segments[1:]):
        raise ProxyRefused("path_not_allowed", "Not a Graph path the proxy forwards")
    edge = segments[1] if len(segments) == 2 else ""
    kinds = kinds_of(segments[0], known)
    if not any(method in allowed.get((kind, edge), ()) for kind in kinds):
        what = " or ".join(kinds) or "this id"
        target = f"{edge} of {what}" if edge else what
        raise ProxyRefused("path_not_allowed", f"{method} on {target} is not on the proxy's allow-list")
    check_params(method, params)


def check_params(method: str, params: list[tuple[str, str]]) -> None:
    """Every `fields` value read in full: no token, no page list, at any depth, under any alias;
    no parameter that turns the call into another one."""
    for name, value in params:
        lowered = name.lower()
        if lowered == "method" and value.upper() != method or lowered in ("batch", "metadata", "ids"):
            raise ProxyRefused("param_not_allowed", f"The proxy does not forward `{name}`")
        if lowered != "fields":
            continue
        try:
            requested = _requested(value)
        except fieldspec.FieldSyntaxError as exc:
            raise ProxyRefused("field_not_allowed", f"fields: {exc}") from None
        if any(TOKEN_NAME.search(n) or n in TOKEN_EDGES for n in requested):
            raise ProxyRefused("field_not_allowed", "Tokens and page lists are not read through the proxy")


@lru_cache(maxsize=256)
def _requested(fields: str) -> frozenset[str]:
    """Every name a `fields` value asks for, at any depth (services send the same few values
    again and again: each is parsed once; one that does not parse raises every time)."""
    return frozenset(fieldspec.names(fieldspec.parse(fields)))
