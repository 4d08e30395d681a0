"""The OpenAPI document: valid 3.1, served, shown, complete, and enforced on every test response."""

from __future__ import annotations

import pytest
from flask import Blueprint, jsonify
from openapi_spec_validator import validate

from crm_meta.api.openapi import DOCUMENT, document, error_codes
from crm_meta.connect import payloads
from crm_meta.http.errors import AppError
from crm_meta.meta import connections
from tests.helpers.users import bearer
from tests.tools import openapi_check
from tests.tools.openapi_check import OpenAPIMismatch, openapi_path

JSON_BLUEPRINTS = {"api", "callbacks", "internal", "gateway", "channels", "webhooks"}
JSON_OPS_ENDPOINTS = {"ops.healthz", "ops.readyz"}


def test_the_document_is_valid_openapi_3_1():
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema


def test_it_is_served_as_json_as_kept_beside_the_code(client):
    response = client.get("/crm/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == document()
    assert list(response.get_json()["paths"]) == list(document()["paths"])  # in reading order
    assert DOCUMENT.parent.name == "api" and DOCUMENT.suffix == ".yaml"


def test_it_is_shown_as_a_page_with_every_operation_and_no_outside_asset(client):
    response = client.get("/crm/openapi")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            assert f'id="{operation["operationId"]}"' in page
            assert f"{method.upper()} {path}" in page
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page
    assert "<script" not in page
    assert "invalid_signed_request" in page  # error codes listed per status


def test_every_json_route_is_documented_and_every_documented_route_exists(app):
    routes = {}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0]
        if blueprint in JSON_BLUEPRINTS or rule.endpoint in JSON_OPS_ENDPOINTS:
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes[(openapi_path(rule.rule), method.lower())] = rule.endpoint
    routes.pop(("/crm/openapi", "get"))  # the page showing the document (HTML)
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert set(routes) == documented


def test_a_response_that_breaks_the_document_fails_the_test(app, client, monkeypatch, tenant):
    original = payloads.status_payload

    def leaky(*args, **kwargs):
        return {**original(*args, **kwargs), "access_token": "EAA-not-in-the-contract"}

    monkeypatch.setattr(payloads, "status_payload", leaky)
    with pytest.raises(OpenAPIMismatch, match="tokenStatus"):
        client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id))


def test_an_undocumented_status_or_error_code_fails_the_test(client, app, tenant, monkeypatch):
    def refuse(*args, **kwargs):
        raise AppError("Not today", code="brand_new_code", status=409)

    monkeypatch.setattr(connections, "require", refuse)
    with pytest.raises(OpenAPIMismatch, match="metaPortfolios"):
        client.get("/crm/marketing/meta-portfolios", headers=bearer(tenant.tenant_id))


@pytest.mark.openapi_unchecked  # calls the check itself, to see it refuse
def test_an_undocumented_json_route_fails_loudly_and_pages_do_not(make_app):
    app = make_app()
    extra = Blueprint("services", __name__)

    @extra.get("/internal/meta/connections/<tenant>/report")
    def credentials(tenant):
        return jsonify(success=True, data={"tenant": tenant})

    @extra.get("/crm/marketing/report")
    def report():
        return "<html><body>a page</body></html>"

    app.register_blueprint(extra)
    client = app.test_client()
    with pytest.raises(OpenAPIMismatch, match="not in crm_meta/api/openapi.yaml: document it"):
        openapi_check.check(app, client.get("/internal/meta/connections/acme/report"))
    openapi_check.check(app, client.get("/crm/marketing/report"))  # HTML: not the JSON API
    openapi_check.check(app, client.get("/crm/marketing", headers={"Accept": "application/json"}))
    openapi_check.check(app, client.get("/crm/no/such/route"))


def test_error_codes_are_listed_once_per_status_so_a_new_code_is_one_edit():
    schemas = document()["components"]["schemas"]
    seen: dict[str, str] = {}
    for name, schema in schemas.items():
        if name.startswith("Error") and name != "Error":
            for code in error_codes(document(), schema):
                assert code not in seen, f"{code} listed under {seen[code]} and {name}"
                seen[code] = name
    assert set(seen) >= {"not_authenticated", "admin_required", "unknown_asset", "meta_throttled"}
