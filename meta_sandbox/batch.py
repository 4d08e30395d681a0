"""Graph batch requests: `POST {base}/{version}/` with form `batch=[...]`.

Dependencies (Meta's batch doc, "Specifying dependencies between operations"; conformance rows
B1..B8): an item may be `name`d; a later item may `depends_on` it or reference its answer with
`{result=<name>:<jsonpath>}` in its `relative_url` or `body`. Items run in order; a dependent of a
failed (or timed-out) item is answered `null`; a successful item another item depends on is
answered `null` unless it says `omit_response_on_success: false`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from .errors import GraphRefusal, bad_param, fbtrace_id
from .messages import GraphRequest, GraphResponse

MAX_BATCH = 50
_VERSIONED = re.compile(r"^v\d+\.\d+(/|$)")
_CARRIED = ("access_token", "appsecret_proof", "appsecret_time")
REFERENCE = re.compile(r"\{result=([^:}]+):([^}]*)\}")
_STEP = re.compile(r"\.(\*|[A-Za-z0-9_]+)|\[(\*|\d+)\]")
# Meta's words (koala's spec quotes them, double spaces included): the whole batch is refused.
UNRESOLVED = ("Request {index} cannot depend on an  unresolved request with  name {name}. "
              "Requests can only depend on preceding requests")


@dataclass
class _Item:
    raw: dict
    name: str | None = None
    parents: set[str] = field(default_factory=set)
    omit_on_success: bool = True


def _error_response(err: GraphRefusal, version: str) -> GraphResponse:
    trace = fbtrace_id()
    headers = {
        "facebook-api-version": version,
        "x-fb-trace-id": trace,
        "Content-Type": "application/json; charset=UTF-8",
        **err.headers,
    }
    return GraphResponse(err.status, err.body(trace), headers)


def _parse(raw: str) -> list[Any]:
    try:
        items = json.loads(raw)
    except ValueError:
        raise bad_param("(#100) The parameter batch must be a JSON-encoded array") from None
    if not isinstance(items, list) or not items:
        raise bad_param("(#100) The parameter batch must be a JSON-encoded array")
    if len(items) > MAX_BATCH:
        raise bad_param(f"(#100) Too many requests in batch message. Maximum batch size is {MAX_BATCH}")
    return items


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() not in ("false", "0")


def _plan(items: list[Any]) -> list[_Item]:
    """Each item's name and the names it depends on; a name not given by a preceding item
    refuses the whole batch, as Meta does."""
    planned, seen = [], set()
    for index, raw in enumerate(items):
        raw = raw if isinstance(raw, dict) else {}
        texts = [str(raw.get("relative_url") or ""), str(raw.get("body") or "")]
        parents = {m.group(1) for text in texts for m in REFERENCE.finditer(text)}
        if raw.get("depends_on"):
            parents.add(str(raw["depends_on"]))
        for name in sorted(parents - seen):
            raise GraphRefusal(UNRESOLVED.format(index=index, name=name), 100,
                               type_="GraphBatchException")
        name = str(raw["name"]) if raw.get("name") else None
        planned.append(_Item(raw, name, parents, _flag(raw.get("omit_response_on_success"), True)))
        if name:
            seen.add(name)
    return planned


def jsonpath(document: Any, path: str) -> list[Any]:
    """The values a JSONPath (`$`, `.key`, `.*`, `[n]`, `[*]`) selects in a JSON document."""
    if not path.startswith("$"):
        return []
    nodes, rest = [document], path[1:]
    while rest:
        step = _STEP.match(rest)
        if step is None:
            return []
        key = step.group(1) if step.group(1) is not None else step.group(2)
        rest = rest[step.end():]
        found = []
        for node in nodes:
            if key == "*":
                if isinstance(node, dict | list):
                    found += list(node.values()) if isinstance(node, dict) else node
            elif isinstance(node, dict) and key in node:
                found.append(node[key])
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                found.append(node[int(key)])
        nodes = found
    return [n for n in nodes if n is not None and not isinstance(n, dict | list)]


def _resolve(text: str, bodies: dict[str, Any], index: int) -> str:
    """Each `{result=name:path}` replaced by the values it selects, comma-joined (URL-encoded)."""
    def value(match: re.Match) -> str:
        values = jsonpath(bodies.get(match.group(1)), match.group(2))
        if not values:
            raise bad_param(f"(#100) Request {index} references {match.group(0)}, which "
                            "resolved to no value")
        return quote(",".join("true" if v is True else "false" if v is False else str(v)
                              for v in values), safe=",")
    return REFERENCE.sub(value, text)


def _sub_request(item: Any, req: GraphRequest, version: str, versioned: bool,
                 bodies: dict[str, Any], index: int) -> GraphRequest:
    if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
        raise bad_param("(#100) Each batch item needs a relative_url")
    relative = _resolve(item["relative_url"], bodies, index).lstrip("/")
    path, _, query_string = relative.partition("?")
    query = parse_qsl(query_string, keep_blank_values=True)
    body = parse_qsl(_resolve(str(item.get("body") or ""), bodies, index), keep_blank_values=True)
    params = dict(query + body)
    for key in _CARRIED:  # the batch's own token and proof apply to items without one
        if key not in params and req.params.get(key):
            params[key] = req.params[key]
    if versioned and not _VERSIONED.match(path):
        path = f"{version}/{path}"
    return GraphRequest(
        method=str(item.get("method") or "GET").upper(),
        path="/" + path,
        params=params,
        query=query,
        bearer=None,
        base_url=req.base_url,
    )


def _entry(response: GraphResponse, include_headers: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": response.status}
    if include_headers:
        entry["headers"] = [{"name": k, "value": v} for k, v in response.headers.items()]
    entry["body"] = response.text
    return entry


def _parsed(body: Any) -> Any:
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return None


def run_batch(sandbox, req: GraphRequest, version: str, handle: Callable) -> GraphResponse:
    """Run each item in order through the normal dispatcher; answer Meta's batch shape."""
    versioned = req.path.strip("/") != ""
    try:
        if not req.params.get("access_token"):
            # Meta's batch doc: the access token is a top-level parameter of the batch itself.
            raise GraphRefusal("An access token is required to request this resource.", 104)
        planned = _plan(_parse(req.params["batch"]))
    except GraphRefusal as err:
        return _error_response(err, version)
    include_headers = req.params.get("include_headers", "true").lower() != "false"
    results: list[dict[str, Any] | None] = []
    bodies: dict[str, Any] = {}  # name -> the parsed body of a successful named item
    failed: set[str] = set()  # names that failed, timed out or were skipped
    for index, item in enumerate(planned):
        if item.parents & failed:  # Meta: a dependent of a failed request is answered null
            results.append(None)
            failed.add(item.name or "")
            continue
        try:
            sub = _sub_request(item.raw, req, version, versioned, bodies, index)
        except GraphRefusal as err:
            response = _error_response(err, version)
        else:
            if sandbox.faults.take(sub.path, sub.method, in_batch=True) is not None:
                results.append(None)  # Meta: this request timed out inside the batch
                failed.add(item.name or "")
                continue
            response = handle(sandbox, sub)
        if item.name:
            if response.status >= 400:
                failed.add(item.name)
            else:
                bodies[item.name] = _parsed(response.body)
        results.append(_entry(response, include_headers))
    depended = {name for item in planned for name in item.parents}
    for index, item in enumerate(planned):  # a successful dependency is omitted by default
        if item.name in depended and item.omit_on_success and item.name not in failed:
            results[index] = None
    headers = {"facebook-api-version": version, "Content-Type": "application/json; charset=UTF-8"}
    return GraphResponse(200, results, headers)
