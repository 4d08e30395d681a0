"""What a token can see: businesses, ad accounts, pages, WhatsApp accounts, in our shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeAlias
from urllib.parse import urlencode

from crm_meta.meta.batch import BatchResult
from crm_meta.meta.errors import TransientError
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.types import (
    AdAccount,
    BatchRequest,
    Business,
    InstagramAccount,
    JsonObject,
    Page,
    PhoneNumber,
    WhatsAppAccount,
)

ACCOUNT_STATUS = {1: "ACTIVE", 2: "DISABLED", 3: "UNSETTLED", 7: "PENDING_RISK_REVIEW",
                  8: "PENDING_SETTLEMENT", 9: "IN_GRACE_PERIOD", 100: "PENDING_CLOSURE",
                  101: "CLOSED"}
AD_FIELDS = "id,account_id,name,account_status,currency,timezone_name"
PAGE_LIMIT = 100
BATCH_SIZE = 50  # Meta's limit of requests per batch
NULL_RETRIES = 3  # rounds a page answered `null` inside a batch (Meta's timeout) is asked again
WABA_EDGES = (("owned_whatsapp_business_accounts", "owned"),
              ("client_whatsapp_business_accounts", "client"))
PHONE_FIELDS = "id,display_phone_number,verified_name,quality_rating"

# An edge read: (the id of its owner, or "me"; the edge's name), e.g. ("me", "accounts").
EdgeKey: TypeAlias = tuple[str, str]


@dataclass
class Discovery:
    user_id: str
    user_name: str
    businesses: list[Business] = field(default_factory=list)
    personal_ad_accounts: list[AdAccount] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    # Each Page's token (from the same /me call): stored encrypted, never in `pages`.
    page_tokens: dict[str, str] = field(default_factory=dict, repr=False)
    instagram: list[InstagramAccount] = field(default_factory=list)
    # False when the round budget ran out with pages still to read: what is here is a part.
    complete: bool = True


def ad_account(raw: JsonObject, business_id: str | None) -> AdAccount:
    """The contract's AdAccount from Meta's fields."""
    status_code = int(raw.get("account_status") or 0)
    account_id = str(raw.get("account_id") or str(raw.get("id", "")).removeprefix("act_"))
    return {
        "id": f"act_{account_id}",
        "account_id": account_id,
        "name": raw.get("name") or account_id,
        "currency": raw.get("currency"),
        "timezone": raw.get("timezone_name"),
        "status": ACCOUNT_STATUS.get(status_code, "UNKNOWN"),
        "account_status": status_code,
        "business_id": business_id,
    }


def me_fields(granted: set[str]) -> str:
    """One /me call with field expansion, asking only for what the grant allows."""
    fields = ["id", "name"]
    ads = bool(granted & {"ads_management", "ads_read"})
    if "business_management" in granted:
        nested: list[str] = []
        if ads:
            nested += [f"owned_ad_accounts.limit({PAGE_LIMIT}){{{AD_FIELDS}}}",
                       f"client_ad_accounts.limit({PAGE_LIMIT}){{{AD_FIELDS}}}"]
        if "whatsapp_business_management" in granted:
            # A business sees the WhatsApp accounts it owns and those its clients shared with it.
            # ...each with its phone numbers, in the same call.
            waba = f"id,name,phone_numbers.limit({PAGE_LIMIT}){{{PHONE_FIELDS}}}"
            nested += [f"{edge}.limit({PAGE_LIMIT}){{{waba}}}" for edge, _ in WABA_EDGES]
        fields.append(f"businesses.limit({PAGE_LIMIT}){{{','.join(['id', 'name', *nested])}}}")
    if ads:
        # Only the person's own accounts: /me/adaccounts would repeat every business account
        # and need one sequential page per hundred of them.
        fields.append(f"personal_ad_accounts.limit({PAGE_LIMIT}){{{AD_FIELDS}}}")
    if "pages_show_list" in granted:  # Meta lists /me/accounts only with pages_show_list
        # Each Page's token and its Instagram business account come in the same call.
        page = "id,name,category,tasks,access_token"
        if "instagram_basic" in granted:
            page += ",instagram_business_account{id,username,name}"
        # `summary(total_count)` (Meta's User Accounts reference): how many pages to chain.
        fields.append(f"accounts.limit({PAGE_LIMIT}).summary(total_count){{{page}}}")
    return ",".join(fields)


def discover(graph: GraphClient, token: str, granted: set[str], rounds: int | None = None) -> Discovery:
    """Read everything in one /me call, then fetch every further page in batched rounds: at most
    `rounds` of them when given (the rest is left unread and the discovery says it is partial)."""
    me = graph.get("me", token=token, fields=me_fields(granted))
    edges, complete = _complete_edges(graph, token, me, rounds)
    businesses: list[Business] = []
    for business in edges.get(("me", "businesses"), []):
        bid = str(business["id"])
        accounts: dict[str, AdAccount] = {}
        for edge in ("owned_ad_accounts", "client_ad_accounts"):
            for raw in edges.get((bid, edge), []):
                account = ad_account(raw, bid)
                accounts.setdefault(account["id"], account)
        businesses.append({
            "id": bid,
            "name": business.get("name") or bid,
            "ad_accounts": list(accounts.values()),
            "whatsapp_business_accounts": _wabas(edges, bid),
        })
    in_business = {a["id"] for b in businesses for a in b["ad_accounts"]}
    personal = [ad_account(raw, None) for raw in edges.get(("me", "personal_ad_accounts"), [])]
    raw_pages = edges.get(("me", "accounts"), [])
    pages: list[Page] = [{"id": str(p["id"]), "name": p.get("name"), "category": p.get("category"),
                          "tasks": p.get("tasks", [])} for p in raw_pages]
    return Discovery(
        user_id=str(me["id"]),
        user_name=me.get("name") or "",
        businesses=businesses,
        personal_ad_accounts=[a for a in personal if a["id"] not in in_business],
        pages=pages,
        page_tokens={str(p["id"]): p["access_token"] for p in raw_pages
                     if isinstance(p.get("access_token"), str) and p["access_token"]},
        instagram=[{"id": str(ig["id"]), "username": ig.get("username"), "name": ig.get("name"),
                    "page_id": str(p["id"])}
                   for p in raw_pages if isinstance(ig := p.get("instagram_business_account"), dict)
                   and ig.get("id")],
        complete=complete,
    )


def _wabas(edges: dict[EdgeKey, list[JsonObject]], business_id: str) -> list[WhatsAppAccount]:
    found: dict[str, WhatsAppAccount] = {}
    for edge, relationship in WABA_EDGES:
        for raw in edges.get((business_id, edge), []):
            phones: list[PhoneNumber] = [
                {"id": str(n["id"]), "display_phone_number": n.get("display_phone_number"),
                 "verified_name": n.get("verified_name"), "quality_rating": n.get("quality_rating")}
                for n in edges.get((str(raw["id"]), "phone_numbers"), [])]
            found.setdefault(str(raw["id"]), {"id": str(raw["id"]), "name": raw.get("name"),
                                              "relationship": relationship,
                                              "phone_numbers": phones})
    return list(found.values())


def _complete_edges(graph: GraphClient, token: str, me: JsonObject,
                    rounds: int | None = None) -> tuple[dict[EdgeKey, list[JsonObject]], bool]:
    """Flatten the expanded edges, then follow every `paging.next` in batched rounds: a cursor-paged
    edge is followed by a chain of dependent requests inside one batch (page k+1's `after` is
    `{result=<page k>:$.paging.cursors.after}`), so one round trip reads up to 50 of its pages.
    At most `rounds` batches when given; returns the items and whether every page was read."""
    items: dict[EdgeKey, list[JsonObject]] = {}
    pending: list[_Pending] = []
    totals: dict[EdgeKey, int] = {}  # edges whose first page gave summary.total_count

    def collect(key: EdgeKey, page: JsonObject) -> None:
        items.setdefault(key, []).extend(page.get("data", []))
        for child in page.get("data", []):  # a further page's items carry nested edges too
            if isinstance(child, dict) and "id" in child:
                walk(str(child["id"]), {k: v for k, v in child.items() if k != "id"})

    def walk(owner_key: str, node: JsonObject) -> None:
        for name, value in node.items():
            if isinstance(value, dict) and "data" in value:
                total = (value.get("summary") or {}).get("total_count")
                if isinstance(total, int) and not isinstance(total, bool):
                    totals[(owner_key, name)] = total
                collect((owner_key, name), value)
                if following := graph.next_page_params(value):
                    pending.append(_Pending((owner_key, name), value, *following))

    walk("me", {k: v for k, v in me.items() if k not in ("id", "name")})
    nulls: dict[int, int] = {}  # id(page) -> rounds its next page came back null
    while pending:
        if rounds is not None and rounds <= 0:
            return items, False
        rounds = None if rounds is None else rounds - 1
        left = {p.key: totals[p.key] - len(items.get(p.key, [])) for p in pending if p.key in totals}
        chains, pending = _round(pending, left)
        requests_ = [request for chain in chains for request in chain.requests]
        answers = iter(graph.batch(requests_, token=token))
        for chain in chains:
            answered = [next(answers) for _ in chain.requests]
            last, timed_out = _follow(graph, chain, answered, collect)
            if timed_out:  # a page came back null inside the batch: ask again from there, boundedly
                nulls[id(last)] = nulls.get(id(last), 0) + 1
                if nulls[id(last)] > NULL_RETRIES:
                    raise TransientError("Meta kept timing out on a page of assets")
            if following := graph.next_page_params(last):  # timed out, or longer than this round's chain
                pending.append(_Pending(chain.key, last, *following))
    return items, True


class _Pending(NamedTuple):
    """A page read that has a `next` one (Meta's `paging.next`), not yet asked for."""

    key: EdgeKey
    page: JsonObject
    path: str  # the next page's path and params (GraphClient.next_page_params)
    params: JsonObject


@dataclass
class _Chain:
    key: EdgeKey
    page: JsonObject  # the page whose `next` the chain starts from
    requests: list[BatchRequest]


def _round(pending: list[_Pending], left: dict[EdgeKey, int]) -> tuple[list[_Chain], list[_Pending]]:
    """This round's chains (at most BATCH_SIZE requests in all) and what waits for the next one.
    After one request per edge, the spare slots go first to cursor-paged edges whose size Meta
    told (`left`: items still to read; exactly the pages they need), then evenly to the others."""
    taken, rest = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
    lengths = [1] * len(taken)
    spare = BATCH_SIZE - len(taken)
    unknown: list[int] = []
    for n, (key, _page, _path, params) in enumerate(taken):
        if "after" not in params:
            continue
        if key not in left:
            unknown.append(n)
            continue
        limit = str(params.get("limit") or "")
        per_page = int(limit) if limit.isdigit() and int(limit) > 0 else PAGE_LIMIT
        extra = min(max(0, -(-left[key] // per_page) - 1), spare)
        lengths[n] += extra
        spare -= extra
    for i, n in enumerate(unknown):
        lengths[n] += spare // len(unknown) + (1 if i < spare % len(unknown) else 0)
    chains = [_Chain(key, page, _chained(f"e{n}", path.lstrip("/"), params, lengths[n]))
              for n, (key, page, path, params) in enumerate(taken)]
    return chains, rest


def _chained(prefix: str, path: str, params: JsonObject, length: int) -> list[BatchRequest]:
    """The first page's request as Meta linked it, then `length - 1` pages each taking its
    `after` from the page before (a reference Meta resolves inside the batch)."""
    if length == 1:
        return [{"relative_url": f"{path}?{urlencode(params)}"}]
    others = urlencode({k: v for k, v in params.items() if k != "after"})
    requests_: list[BatchRequest] = [{"relative_url": f"{path}?{urlencode(params)}", "name": f"{prefix}p0",
                                      "omit_response_on_success": False}]
    for k in range(1, length):
        after = f"{{result={prefix}p{k - 1}:$.paging.cursors.after}}"
        requests_.append({"relative_url": f"{path}?{others}&after={after}".replace("?&", "?"),
                          "name": f"{prefix}p{k}", "omit_response_on_success": False})
    return requests_


def _follow(graph: GraphClient, chain: _Chain, answered: list[BatchResult],
            collect: Callable[[EdgeKey, JsonObject], None]) -> tuple[JsonObject, bool]:
    """Take the chain's pages while each has a `next`; what Meta answered past the last page is
    ignored. Returns the last page read, and whether the chain broke on a `null` answer."""
    last = chain.page
    for answer in answered:
        if answer is None:  # it (or its parent) timed out inside the batch
            return last, True
        if isinstance(answer, Exception):
            raise answer
        collect(chain.key, answer)
        last = answer
        if not graph.next_page_params(answer):
            break
    return last, False
