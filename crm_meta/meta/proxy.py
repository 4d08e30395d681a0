"""The services' Graph proxy: an allow-list, the tenant's token and proof, the shared governor,
paging links that lead back through the proxy, and token errors fed to the connection's status.

A service never sees the token: it is added here (and any token or proof the caller sent is
dropped), calls that could read a token are refused (crm_meta.meta.exposure), whatever Meta
still sends is stripped (crm_meta.meta.scrub), and Meta's paging links, which carry the token
at Meta, are rewritten to the proxy's own URL without it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlalchemy import inspect

from crm_meta.infra import metrics
from crm_meta.infra.clock import Clock
from crm_meta.infra.database import db
from crm_meta.meta import channels, credentials, exposure, passthrough, scrub
from crm_meta.meta.credentials import Caller, Credentials, usable
from crm_meta.meta.errors import GraphError, ProxyRefused, ThrottledError, TokenInvalidError
from crm_meta.meta.graph import GraphClient, endpoint_label
from crm_meta.meta.keepalive import deadlines, verdicts
from crm_meta.meta.keepalive.probing import Probe, ProbeKind
from crm_meta.meta.settings import MetaSettings
from crm_meta.meta.store import TokenStore
from crm_meta.models import MetaConnection
from crm_meta.notify import Notice

log = logging.getLogger(__name__)
VERSION = re.compile(r"^v\d+\.\d+$")
SEGMENT = re.compile(r"^[A-Za-z0-9_]+$")
AD_ACCOUNT = re.compile(r"^act_\d+$")
# Meta's headers a service gets back; nothing else of Meta's answer (cookies, ...) passes.
PASSED_HEADERS = ("content-type", "x-app-usage", "x-business-use-case-usage", "x-ad-account-usage",
                  "x-fb-trace-id", "x-fb-rev", "facebook-api-version", "www-authenticate",
                  "x-ad-api-version-warning")


@dataclass
class Call:
    """A service's call as received: method, Graph path, query pairs, form fields."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: dict[str, str] | None = None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def normalise(path: str, version: str) -> str:
    """The path without slashes or a version prefix; only the configured version is served."""
    segments = path.strip("/").split("/")
    if segments and VERSION.match(segments[0]):
        if segments[0] != version:
            raise ProxyRefused("version_not_allowed", f"The proxy calls Graph {version} only")
        segments = segments[1:]
    if not segments or not all(SEGMENT.match(s) for s in segments):
        raise ProxyRefused("path_not_allowed", "Not a Graph path the proxy forwards")
    return "/".join(segments)


def check(call: Call, version: str, allowed: list[str], known: exposure.Known | None = None) -> str:
    """The normalised path when the proxy forwards this call (crm_meta.meta.exposure decides)."""
    path = normalise(call.path, version)
    params, rules = call.query + list((call.form or {}).items()), exposure.allowed_from(tuple(allowed))
    exposure.admit(call.method, path, params, known or exposure.Known(), rules)
    return path


def scopes(path: str, row: MetaConnection) -> list[str]:
    """The governor's scopes of a call: its ad account and business when the path names them;
    for ids the connection does not know (a campaign, a form), its selected account's."""
    first = path.split("/")[0]
    accounts = {a["id"]: a for a in row.all_ad_accounts()}
    if first in accounts or AD_ACCOUNT.match(first):
        business = (accounts.get(first) or {}).get("business_id")
        return [f"ad_account:{first}"] + ([f"business:{business}"] if business else [])
    if first in {b["id"] for b in row.business_managers or []}:
        return [f"business:{first}"]
    if first in {p["id"] for p in row.pages or []} or not row.selected_ad_account_id:
        return []
    found = [f"ad_account:{row.selected_ad_account_id}"]
    return found + ([f"business:{row.selected_business_id}"] if row.selected_business_id else [])


@dataclass(frozen=True)
class Links:
    """Where an answer's paging links lead: the proxy's own URL (`base`) at `version`, carrying
    `token`, the caller's own credential, when it is one that belongs in them (the drop-in
    gateway's clients follow `paging.next` as it is, the way Meta's links carry the caller's token)."""

    version: str
    base: str | Callable[[], str]  # or what makes it, called only for an answer with links
    token: str | None = None


class Opened:
    """The tenants' tokens as decrypted, each with its appsecret_proof, kept a short while by
    this process (AES-GCM and an HMAC per call otherwise).

    Keyed by the tenant and the ciphertext: a new token (reconnect, refresh, re-encryption under
    another key) is a new entry, never answered with the old one. Whether a call may use the
    token at all is still decided on every call, before this (the gateway token or service key,
    the connection's status). `seconds` bounds how long a plaintext stays in memory."""

    def __init__(self, seconds: float = 60.0, most: int = 1024):
        self.seconds, self.most = seconds, most
        self._kept: dict[tuple[int, str], tuple[str, str, float]] = {}

    def get(self, tenant_id: int, ciphertext: str | None) -> tuple[str, str] | None:
        kept = self._kept.get((tenant_id, ciphertext or ""))
        if kept is None or kept[2] < time.monotonic():
            return None
        return kept[0], kept[1]

    def put(self, tenant_id: int, ciphertext: str | None, opened: tuple[str, str]) -> None:
        if len(self._kept) >= self.most:
            self._kept.clear()  # a bound, not a policy: the next calls decrypt again
        self._kept[(tenant_id, ciphertext or "")] = (*opened, time.monotonic() + self.seconds)


@dataclass(frozen=True)
class Gateway:
    """The services' Graph proxy, built once by the runtime with its collaborators: the Graph
    client (and its shared governor), the token store, the clock, the settings, and where the
    notices a token error decides go."""

    graph: GraphClient
    store: TokenStore
    clock: Clock
    meta: MetaSettings  # what is forwarded, what a usable connection holds
    keepalive: verdicts.Settings  # how a token error counts
    on_notices: Callable[[list[Notice]], object]
    opened: Opened = field(default_factory=Opened)

    def parts(self) -> channels.Parts:
        return channels.Parts(graph=self.graph, store=self.store, now=self.clock.now())

    def credentials(self, caller: Caller, *, fmt: str | None, ip: str | None) -> Credentials:
        """The tenant's token with its proof, for a service that calls Meta itself (audited)."""
        return credentials.read(self.parts(), caller, self.meta.scopes, fmt=fmt, ip=ip)

    def forward(self, call: Call, caller: Caller, links: Links) -> Answer:
        """Check, govern, forward with the tenant's token (at `links.version`), relink, and learn
        from token errors."""
        graph, store = self.graph, self.store
        known = exposure.Known.of(caller.row)
        path = check(call, links.version, list(self.meta.proxy_allowed_paths), known)
        row, _status = usable(caller.row, self.clock.now(), self.meta.scopes)
        # A call on a Page (its Send API) goes with the Page's own token; anything else, the tenant's.
        # Only a discovered Page's id looks up the channels (a query), not every call.
        node = path.split("/")[0]
        page_token = channels.page_token_for(store, attached(row), node) if node in known.pages else None
        token, proof = (page_token, graph.proof(page_token)) if page_token else self.token_of(row)
        ciphertext, row_id, held = row.token_ciphertext, row.id, scopes(path, row)
        if db.session.registry.has():  # a warm gateway call has no session: nothing to end
            db.session.commit()  # the key's last use; no transaction stays open while Meta answers
        if graph.governor is not None:
            graph.governor.check(held)
        answer = graph.forward(passthrough.Request(call.method, path, call.query, call.form, links.version),
                               token=token, proof=proof)
        log.info("proxy %s %s for tenant %s by service %s: %s", call.method, endpoint_label(path),
                 caller.tenant_id, caller.service, answer.status)
        metrics.PROXY_CALLS.labels(service=caller.service, status=str(answer.status)).inc()
        # A Page's dead token says nothing about the connection's own: no strike for it.
        if isinstance(answer.error, TokenInvalidError) and page_token is None:
            self.record_token_error(row_id, ciphertext, answer.error)
        headers = scrub.headers({name: answer.headers[name] for name in PASSED_HEADERS
                                 if name in answer.headers})
        if isinstance(answer.error, ThrottledError) and answer.error.retry_after:
            headers["Retry-After"] = str(int(answer.error.retry_after))
        # Scrubbed first (no Meta token survives), then relinked: the links then carry only the
        # caller's own credential, when it is one that belongs in them (`links.token`).
        body = relinked(scrub.body(answer.body, headers.get("content-type", "")), headers, graph, links.base,
                        links.token)
        return Answer(answer.status, headers, body)

    def token_of(self, row: MetaConnection) -> tuple[str, str]:
        """The tenant's token and its proof (`opened`: decrypted once per ciphertext)."""
        found = self.opened.get(row.tenant_id, row.token_ciphertext)
        if found is None:
            token = self.store.read(row)
            found = (token, self.graph.proof(token))
            self.opened.put(row.tenant_id, row.token_ciphertext, found)
        return found

    def record_token_error(self, row_id: int, ciphertext: str, error: GraphError) -> None:
        """A 190-family answer counts like a sweep's token error: two strikes make needs_reauth.

        Fenced: the verdict is dropped when the tenant reconnected while Meta answered (the row no
        longer holds the token that failed).
        """
        # The request's reads ran outside a transaction (crm_meta.infra.dbreads: until its first
        # commit); one commit now, even of nothing, so that the fence below runs in a real one.
        db.session.commit()
        row = db.session.scalar(db.select(MetaConnection).where(MetaConnection.id == row_id)
                                .with_for_update().execution_options(populate_existing=True))
        if row is None or row.token_ciphertext != ciphertext:
            db.session.rollback()
            return
        contact = deadlines.contacts([row.tenant_id]).get(row.tenant_id)
        outcome = verdicts.apply(row, Probe(ProbeKind.TOKEN_ERROR, error=error),
                                 verdicts.Recording(self.clock.now(), self.keepalive, store=self.store,
                                                    contact=contact))
        db.session.commit()
        self.on_notices(outcome.notices)


def attached(row: MetaConnection) -> MetaConnection:
    """`row` in this request's session (the gateway's kept connection is detached)."""
    return row if inspect(row).session is not None else db.session.merge(row, load=False)


def relinked(body: bytes, headers: dict[str, str], graph: GraphClient, link_base: str | Callable[[], str],
             link_token: str | None = None) -> bytes:
    """Meta's paging links, pointed at the proxy (`link_base`, or what makes it) and stripped of
    token and proof (carrying `link_token` instead, when given)."""
    if b'"paging"' not in body or "json" not in headers.get("content-type", ""):
        return body
    if b'"next"' not in body and b'"previous"' not in body and not scrub.escapes_ascii(body):
        return body  # cursors only (one page): no link to point back, Meta's bytes as they came
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    _relink(payload, graph, link_base() if callable(link_base) else link_base, link_token)
    return json.dumps(payload, ensure_ascii=False).encode()


def _relink(node: object, graph: GraphClient, link_base: str, link_token: str | None = None) -> None:
    if isinstance(node, list):
        for item in node:
            _relink(item, graph, link_base, link_token)
        return
    if not isinstance(node, dict):
        return
    paging = node.get("paging")
    if isinstance(paging, dict):
        for key in ("next", "previous"):
            if isinstance(paging.get(key), str):
                try:
                    found = graph.next_page_params({"paging": {"next": paging[key]}})
                except GraphError:
                    found = None  # a link outside the Graph API: never handed on
                if found is None:
                    paging.pop(key)
                else:
                    path, query = found
                    if link_token:
                        query["access_token"] = link_token
                    paging[key] = f"{link_base}{path.lstrip('/')}?{urlencode(query)}"
    for key, value in node.items():
        if key != "paging":
            _relink(value, graph, link_base, link_token)
