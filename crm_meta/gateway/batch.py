"""A Graph batch through the gateway (`POST /graph/<version>/` with `batch=[...]`), answered in
Meta's shape: one slot per item, `{code, headers, body}` or `null`.

Every item is one call of the single-call path (`send`: the same allow-list, method check, Page
token, governor, scrubbing and relinking as a lone call); a refused item answers in its own slot
with the Graph-shaped error a lone call would get, and the others still run. `depends_on`,
`name` and `omit_response_on_success` behave as at Meta (docs/meta-conformance.md B2-B5).

JSONPath references (`{result=name:$.path}`) are refused: their value is only known once Meta
answered, inside a batch the gateway would no longer see item by item, so a reference could put
any id into a path or `ids=` past the allow-list. Items are sent one after the other, not as one
batch to Meta: each is checked on what it really is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from crm_meta.auth.gateway_tokens import BadCredential
from crm_meta.http import graph_errors
from crm_meta.http.errors import AppError, to_app_error
from crm_meta.meta import proxy
from crm_meta.meta.errors import DomainError, GraphError, ProxyRefused

MAX_ITEMS = 50  # Meta's batch limit
METHODS = ("GET", "POST", "DELETE")
# Meta's words for a name no preceding item gave (koala's spec; conformance row B5).
UNRESOLVED = ("Request {index} cannot depend on an  unresolved request with  name {name}. "
              "Requests can only depend on preceding requests")
Send = Callable[[proxy.Call], proxy.Answer]


@dataclass
class Item:
    raw: dict
    name: str | None
    parent: str | None
    omit_on_success: bool


def parse(raw: str | None) -> list[Item]:
    """The batch's items; a batch that is not a JSON list of 1..50, or that names a parent no
    preceding item gave, is refused as a whole (as Meta refuses it)."""
    try:
        items = json.loads(raw or "")
    except ValueError:
        items = None
    if not isinstance(items, list) or not items:
        raise AppError("The parameter batch must be a JSON-encoded array", code="invalid_batch")
    if len(items) > MAX_ITEMS:
        raise AppError(f"Too many requests in batch message. Maximum batch size is {MAX_ITEMS}",
                       code="invalid_batch")
    planned, names = [], set()
    for index, raw_item in enumerate(items):
        item = raw_item if isinstance(raw_item, dict) else {}
        parent = str(item["depends_on"]) if item.get("depends_on") else None
        if parent is not None and parent not in names:
            raise AppError(UNRESOLVED.format(index=index, name=parent), code="batch_unresolved")
        name = str(item["name"]) if item.get("name") else None
        omit = str(item.get("omit_response_on_success", True)).lower() not in ("false", "0")
        planned.append(Item(item, name, parent, omit))
        names |= {name} if name else set()
    return planned


def call_of(raw: dict, credential: str | None) -> proxy.Call:
    """The single call an item stands for; ProxyRefused (or BadCredential) when it is not one
    the gateway forwards as it is."""
    url, body = raw.get("relative_url"), raw.get("body") or ""
    if not isinstance(url, str) or not url or not isinstance(body, str):
        raise ProxyRefused("param_not_allowed", "Each batch item needs a relative_url (and a string body)")
    if "{result=" in url or "{result=" in body:
        raise ProxyRefused("param_not_allowed", "The gateway does not resolve batch references "
                                                "({result=...}); send the ids themselves")
    if raw.get("attached_files") or "://" in url:
        raise ProxyRefused("param_not_allowed", "The gateway forwards relative Graph calls without files")
    method = str(raw.get("method") or "GET").upper()
    if method not in METHODS:
        raise ProxyRefused("param_not_allowed", f"Unsupported {method.lower()} request in a batch")
    path, _, query_string = url.lstrip("/").partition("?")
    query = parse_qsl(query_string, keep_blank_values=True)
    form = parse_qsl(body, keep_blank_values=True)
    if any(k == "access_token" and v != credential for k, v in query + form):
        raise BadCredential("A batch item may carry only the batch's own access token")
    # Meta: GET and DELETE items carry only `method` and `relative_url` (a body is not sent).
    return proxy.Call(method, path, query, (dict(form) or None) if method == "POST" else None)


def run(items: list[Item], credential: str | None, send: Send, include_headers: bool) -> list:
    """Meta's batch answer: each item's slot, in order."""
    answers: list[dict | None] = []
    failed: set[str] = set()
    for item in items:
        if item.parent is not None and item.parent in failed:  # Meta: a failed parent's dependents
            answers.append(None)
            failed |= {item.name} if item.name else set()
            continue
        try:
            answer = send(call_of(item.raw, credential))
        except (AppError, DomainError, GraphError) as exc:
            answer = refused(exc)
        if answer.status >= 400 and item.name:
            failed.add(item.name)
        answers.append(entry(answer, include_headers))
    parents = {item.parent for item in items if item.parent}
    return [None if item.name in parents and item.omit_on_success and item.name not in failed
            else answer for item, answer in zip(items, answers, strict=True)]


def refused(exc: AppError | DomainError | GraphError) -> proxy.Answer:
    """A refused item's answer: the Graph-shaped error a lone call gets (crm_meta.http.errors'
    table, then crm_meta.http.graph_errors' shapes)."""
    error = exc if isinstance(exc, AppError) else to_app_error(exc)
    status, headers, body = graph_errors.refusal(error.code, error.message, error.status, error.retry_after)
    headers["content-type"] = "application/json; charset=UTF-8"
    return proxy.Answer(status, headers, json.dumps(body).encode())


def entry(answer: proxy.Answer, include_headers: bool) -> dict:
    found: dict = {"code": answer.status}
    if include_headers:
        found["headers"] = [{"name": k, "value": v} for k, v in answer.headers.items()]
    found["body"] = answer.body.decode("utf-8", errors="replace")
    return found
