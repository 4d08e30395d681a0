"""Request bodies over MAX_CONTENT_LENGTH (default 1 MB) are refused before anything parses them."""

from __future__ import annotations

import pytest

from config import DevelopmentConfig
from tests.helpers.responses import assert_envelope
from tests.helpers.users import bearer

MB = 1024 * 1024


def many_fields(total: int) -> dict:
    """A form of many modest fields (each well under Werkzeug's per-field memory limit)."""
    return {f"f{i}": "x" * 2000 for i in range(total // 2000)}


def test_the_limit_is_a_setting_of_one_megabyte_by_default():
    assert DevelopmentConfig({}).MAX_CONTENT_LENGTH == MB
    assert DevelopmentConfig({"MAX_CONTENT_LENGTH": "2048"}).MAX_CONTENT_LENGTH == 2048


@pytest.mark.parametrize("path", ["/crm/meta/deauthorize", "/crm/meta/data-deletion"])
def test_a_big_form_to_an_anonymous_callback_gets_the_413_envelope(client, path):
    response = client.post(path, data={"signed_request": "x.y", **many_fields(2 * MB)})
    assert_envelope(response, 413, "payload_too_large")


def test_a_big_json_body_to_the_api_gets_the_413_envelope(client, tenant):
    body = {"account_id": "act_1", "padding": "x" * (2 * MB)}
    response = client.post("/crm/marketing/connect", json=body, headers=bearer(tenant.tenant_id))
    assert_envelope(response, 413, "payload_too_large")


def test_a_body_just_under_the_limit_is_served(make_app):
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024)
    client = app.test_client()
    small = client.post("/crm/meta/deauthorize", data={"signed_request": "x.y", "pad": "x" * 60_000})
    assert_envelope(small, 400, "invalid_signed_request")
    big = client.post("/crm/meta/deauthorize", data={"signed_request": "x.y", "pad": "x" * 70_000})
    assert_envelope(big, 413, "payload_too_large")


def test_a_browser_gets_a_friendly_page(client):
    response = client.post("/login", data={"email": "a@b.test", "password": "p", **many_fields(2 * MB)},
                           headers={"Accept": "text/html"})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "Request too large" in text and "Traceback" not in text
