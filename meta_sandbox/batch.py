"""Graph batch requests: `POST {base}/{version}/` with form `batch=[...]`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .errors import GraphRefusal, bad_param, fbtrace_id
from .messages import GraphRequest, GraphResponse

MAX_BATCH = 50
_VERSIONED = re.compile(r"^v\d+\.\d+(/|$)")
_CARRIED = ("access_token", "appsecret_proof", "appsecret_time")


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


def _sub_request(item: Any, req: GraphRequest, version: str, versioned: bool) -> GraphRequest:
    if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
        raise bad_param("(#100) Each batch item needs a relative_url")
    relative = item["relative_url"].lstrip("/")
    path, _, query_string = relative.partition("?")
    query = parse_qsl(query_string, keep_blank_values=True)
    body = parse_qsl(item.get("body") or "", keep_blank_values=True)
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


def run_batch(sandbox, req: GraphRequest, version: str, handle: Callable) -> GraphResponse:
    """Run each item through the normal dispatcher; answer Meta's batch shape."""
    versioned = req.path.strip("/") != ""
    try:
        if not req.params.get("access_token"):
            # Meta's batch doc: the access token is a top-level parameter of the batch itself.
            raise GraphRefusal("An access token is required to request this resource.", 104)
        items = _parse(req.params["batch"])
    except GraphRefusal as err:
        return _error_response(err, version)
    include_headers = req.params.get("include_headers", "true").lower() != "false"
    results = []
    for item in items:
        try:
            sub = _sub_request(item, req, version, versioned)
        except GraphRefusal as err:
            response = _error_response(err, version)
        else:
            if sandbox.faults.take(sub.path, sub.method, in_batch=True) is not None:
                results.append(None)  # Meta: this request timed out inside the batch
                continue
            response = handle(sandbox, sub)
        entry: dict[str, Any] = {"code": response.status}
        if include_headers:
            entry["headers"] = [{"name": k, "value": v} for k, v in response.headers.items()]
        entry["body"] = response.text
        results.append(entry)
    headers = {"facebook-api-version": version, "Content-Type": "application/json; charset=UTF-8"}
    return GraphResponse(200, results, headers)
