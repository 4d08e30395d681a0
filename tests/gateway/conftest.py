"""Fixtures for the drop-in Graph endpoint: proxy-only services, the gateway token they are
handed (crm-meta on a live port, for clients nobody here wrote, is tests/conftest.py's `live`)."""

from __future__ import annotations

import pytest

CREDENTIALS = "/internal/meta/connections/{}/credentials?format=crm-ventas"


@pytest.fixture
def proxy_service(make_key):
    """CRM Ventas' marketing service as it should be set up: graph:proxy, no credentials:read."""
    return make_key("marketing", scopes=("graph:proxy",))


@pytest.fixture
def gateway_token(client, proxy_service):
    """`gateway_token(slug)`: what the service reads as META_USER_LONG_TOKEN for that tenant."""

    def read(slug: str, service=None, app_=None) -> str:
        the_client = app_.test_client() if app_ is not None else client
        response = the_client.get(CREDENTIALS.format(slug), headers=(service or proxy_service).headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]["META_USER_LONG_TOKEN"]

    return read
