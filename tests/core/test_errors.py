"""One place maps errors: the JSON envelope for programs, friendly pages for browsers."""

from __future__ import annotations

import logging
import re

import pytest

from crm_meta.infra.database import db
from crm_meta.models import Tenant
from tests.helpers.responses import assert_envelope
from tests.helpers.users import bearer

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SECRET_IN_EXCEPTION = "EAAsecret-token-in-the-exception-0123"


def call(client, tenant, case):
    role, method, path, kwargs = case
    headers = dict(JSON)
    if role:
        headers.update(bearer(tenant.tenant_id, role=role))
    return client.open(path, method=method, headers=headers, **kwargs)


API_ERRORS = {
    "401-no-credentials": (None, "GET", "/crm/marketing/token-status", {}, 401, "not_authenticated"),
    "403-member-on-admin": ("member", "GET", "/crm/auth/meta/url", {}, 403, "admin_required"),
    "404-unknown-api-path": ("admin", "GET", "/crm/marketing/no-such-thing", {}, 404, "not_found"),
    "404-unknown-path": (None, "GET", "/no/such/page", {}, 404, "not_found"),
    "405-wrong-method": ("admin", "GET", "/crm/auth/meta/disconnect", {}, 405, "method_not_allowed"),
    "409-not-connected": ("member", "GET", "/crm/marketing/meta-portfolios", {}, 409, "not_connected"),
    "422-form-body": ("admin", "POST", "/crm/marketing/connect", {"data": {"account_id": "act_1"}},
                      422, "validation_error"),
    "422-broken-json": ("admin", "POST", "/crm/marketing/connect",
                        {"data": "{", "content_type": "application/json"}, 422, "validation_error"),
    "422-json-list": ("admin", "POST", "/crm/marketing/connect", {"json": ["act_1"]}, 422,
                      "validation_error"),
    "422-no-account": ("admin", "POST", "/crm/marketing/connect", {"json": {"account_name": "x"}}, 422,
                       "validation_error"),
    "422-bad-name": ("admin", "POST", "/crm/marketing/connect",
                     {"json": {"account_id": "act_1", "account_name": ["x"]}}, 422, "validation_error"),
}


@pytest.mark.parametrize("case", API_ERRORS.values(), ids=API_ERRORS.keys())
def test_api_errors_use_the_envelope(client, tenant, case):
    *request, status, code = case
    response = call(client, tenant, request)
    body = assert_envelope(response, status, code)
    assert "Traceback" not in body["detail"]


def test_json_blueprint_answers_json_even_to_browsers(client, tenant):
    response = client.get("/crm/marketing/token-status", headers=HTML)
    assert_envelope(response, 401, "not_authenticated")


def test_browser_gets_a_friendly_404_page(client):
    response = client.get("/no/such/page", headers=HTML)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert b"Page not found" in response.data
    assert b'href="/crm/marketing"' in response.data


def test_405_keeps_the_allow_header(client, tenant):
    response = client.get("/crm/auth/meta/disconnect", headers=JSON)
    assert response.status_code == 405
    assert "POST" in response.headers.get("Allow", "")


def test_429_uses_the_envelope_with_retry_after(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_META_TEST="1/minute")
    acme = make_tenant("acme", app_=app)
    client = app.test_client()
    headers = bearer(acme.tenant_id, role="member")
    assert client.get("/crm/auth/meta/test-connection", headers=headers).status_code == 200
    response = client.get("/crm/auth/meta/test-connection", headers=headers)
    assert_envelope(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


# -- unexpected exceptions -------------------------------------------------------------------
@pytest.fixture
def boom_app(make_app):
    """An app with a test-only route that writes to the session and then fails."""
    app = make_app()
    seen = {}

    def boom():
        db.session.add(Tenant(name="Half done", slug="half-done"))
        db.session.flush()
        raise RuntimeError(f"kaboom with {SECRET_IN_EXCEPTION}")

    def look_at_session(response):
        seen["in_transaction"] = db.session().in_transaction()
        seen["pending"] = list(db.session.new) + list(db.session.identity_map.values())
        return response

    app.add_url_rule("/_test/boom", "test_boom", boom, methods=["GET", "POST"])
    app.after_request(look_at_session)
    app.seen = seen
    return app


def test_unexpected_error_is_a_500_envelope_with_an_incident_id(boom_app, caplog):
    client = boom_app.test_client()
    with caplog.at_level(logging.ERROR, logger="crm_meta.http.errors"):
        response = client.get("/_test/boom", headers=JSON)
    body = assert_envelope(response, 500, "internal_error")
    incident = re.search(r"incident ([0-9a-f]{12})", body["detail"])
    assert incident, body
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "kaboom", SECRET_IN_EXCEPTION, "boom_app"):
        assert leak not in text
    assert any(incident.group(1) in record.getMessage() for record in caplog.records)


def test_unexpected_error_rolls_the_session_back(boom_app):
    response = boom_app.test_client().post("/_test/boom", headers=JSON)
    assert response.status_code == 500
    assert boom_app.seen == {"in_transaction": False, "pending": []}
    with boom_app.app_context():
        assert db.session.scalar(db.select(Tenant).filter_by(slug="half-done")) is None


def test_each_500_gets_its_own_incident_id(boom_app):
    client = boom_app.test_client()
    ids = {client.get("/_test/boom", headers=JSON).get_json()["detail"] for _ in range(2)}
    assert len(ids) == 2


def test_browser_gets_a_friendly_500_page(boom_app, caplog):
    with caplog.at_level(logging.ERROR, logger="crm_meta.http.errors"):
        response = boom_app.test_client().get("/_test/boom", headers=HTML)
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "Something went wrong" in text
    [logged] = {m.group(1) for r in caplog.records if (m := re.search(r"incident ([0-9a-f]{12})",
                                                                        r.getMessage()))}
    assert logged in text  # the number support will be told is the one in the log
    for leak in ("Traceback", "RuntimeError", "kaboom", SECRET_IN_EXCEPTION):
        assert leak not in text
