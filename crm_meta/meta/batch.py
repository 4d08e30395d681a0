"""Graph batch requests: the request body Meta expects and the answers it gives, per request.

Meta's batch doc: the batch is one POST to the Graph root with `batch` (a JSON list of
`{method, relative_url}`) and the access token as a top-level parameter. Each answer is
`{code, headers, body}` with the body as a JSON string, or `null` when that one request timed
out inside the batch (ask it again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeAlias

from crm_meta.meta.errors import GraphError, TransientError, classify
from crm_meta.meta.types import BatchRequest, JsonObject

DEPENDENCY_KEYS = ("name", "depends_on", "omit_response_on_success")


# A request's result: its body, the GraphError it raised, or None for a `null` answer (ask again).
BatchResult: TypeAlias = JsonObject | GraphError | None


def encode(requests_: list[BatchRequest]) -> str:
    """The `batch` parameter for these requests (GET unless a request names its method), with
    the dependency keys a request carries (`name`, `depends_on`, `omit_response_on_success`)."""
    return json.dumps([{"method": r.get("method", "GET"), "relative_url": r["relative_url"],
                        **_dependency_keys(r)}
                       for r in requests_])


def _dependency_keys(request: Mapping[str, object]) -> dict[str, object]:
    return {k: request[k] for k in DEPENDENCY_KEYS if k in request}


def decode(answers: object, expected: int) -> list[BatchResult]:
    """One result per request: its body, the GraphError it raised, or None for a `null` answer."""
    results: list[BatchResult] = []
    for answer in answers if isinstance(answers, list) else []:
        results.append(None if answer is None else _result(answer))
    if len(results) != expected:
        raise TransientError("Meta's batch answer does not match the request")
    return results


def _result(answer: object) -> JsonObject | GraphError:
    fields: JsonObject = answer if isinstance(answer, dict) else {}
    status = int(fields.get("code") or 500)
    try:
        body = json.loads(fields.get("body") or "null")
    except (ValueError, TypeError):
        body = None
    if status >= 400 or not isinstance(body, dict) or "error" in body:
        error = body.get("error") if isinstance(body, dict) else None
        return classify(error if isinstance(error, dict) else {}, status)
    return body
