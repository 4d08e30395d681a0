"""Keeps crm_meta/api/openapi.yaml true: every response a test client receives is checked.

A response on a documented route must match the document (status, content type, headers,
body). A JSON response on an undocumented route under /crm/ or /internal/ fails the test,
so a new endpoint cannot land without its documentation. Pages (HTML) are not the API.
"""

from __future__ import annotations

import re
from functools import lru_cache

from flask import Flask
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from crm_meta.api.openapi import document

API_PREFIXES = ("/crm/", "/internal/", "/graph/", "/admin/")
PAGE_BLUEPRINTS = {"web", "auth", "static", "sandbox"}  # HTML for people, not the JSON API
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


class _SentRequest(WerkzeugOpenAPIRequest):
    """The request as openapi-core needs it to find the operation; its body was read by the app.
    A `<path:...>` argument (the Graph proxy's) may hold slashes, which an OpenAPI path parameter
    cannot: the path is given with that argument's slashes encoded, so `{path}` matches it."""

    def __init__(self, request, path: str | None = None):
        super().__init__(request)
        self._path = path

    @property
    def path(self) -> str:
        return self._path or super().path

    @property
    def body(self) -> bytes:
        return b""


def _matched_path(path: str, rule, args: dict) -> str | None:
    """`path` with the slashes of a trailing `path`-converter argument percent-encoded."""
    for name, converter in rule._converters.items():
        value = str(args.get(name, ""))
        if ".*" in converter.regex and "/" in value and path.endswith(value):
            return path[: len(path) - len(value)] + value.replace("/", "%2F")
    return None


class OpenAPIMismatch(AssertionError):
    """A response the document does not describe."""


@lru_cache(maxsize=1)
def spec() -> OpenAPI:
    return OpenAPI.from_dict(document())


def openapi_path(rule: str) -> str:
    """`/crm/meta/data-deletion/<confirmation_code>` -> `/crm/meta/data-deletion/{confirmation_code}`."""
    return _CONVERTER.sub(r"{\1}", rule)


def check(app: Flask, response) -> None:
    """Raise OpenAPIMismatch when `response` breaks the document (see the module docstring)."""
    request = response.request
    try:
        rule, args = app.url_map.bind("localhost").match(request.path, method=request.method,
                                                         return_rule=True)
    except (HTTPException, RequestRedirect):
        return  # no route (404/405 from routing): nothing documented to compare with
    path = openapi_path(rule.rule)
    operation = document()["paths"].get(path, {}).get(request.method.lower())
    if operation is None:
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else ""
        if (request.path.startswith(API_PREFIXES) and blueprint not in PAGE_BLUEPRINTS
                and request.method not in {"HEAD", "OPTIONS"} and response.is_json):
            raise OpenAPIMismatch(
                f"{request.method} {rule.rule} ({rule.endpoint}) answers JSON but is not in "
                f"crm_meta/api/openapi.yaml: document it")
        return
    try:
        sent = _SentRequest(request, _matched_path(request.path, rule, args))
        spec().validate_response(sent, WerkzeugOpenAPIResponse(response))
    except Exception as exc:
        causes, cause = [], exc
        while cause is not None and len(causes) < 4:
            causes.append(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or (cause.schema_errors[0] if getattr(cause, "schema_errors", None)
                                        else None)
        body = response.get_data(as_text=True)[:600]
        raise OpenAPIMismatch(f"{request.method} {request.path} -> {response.status_code} does not match "
                              f"crm_meta/api/openapi.yaml ({operation['operationId']}):\n  "
                              + "\n  ".join(causes) + f"\n  body: {body}") from None
