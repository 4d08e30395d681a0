"""Fixtures for the drop-in Graph endpoint: proxy-only services, the gateway token they are
handed, and crm-meta served on a live port for clients nobody here wrote (Meta's SDK, httpx)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.internal.conftest import connect, make_key, row_of, set_status, stored_token  # noqa: F401

CREDENTIALS = "/internal/meta/connections/{}/credentials?format=crm-ventas"


@pytest.fixture
def proxy_service(make_key):  # noqa: F811
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


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


@dataclass
class Live:
    url: str

    @property
    def graph(self) -> str:
        """What a Graph client gets instead of https://graph.facebook.com."""
        return f"{self.url}/graph"


@pytest.fixture
def live(app):
    """The app on a live port of 127.0.0.1, API_BASE_URL pointing at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["API_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(url)
    server.shutdown()
    thread.join(timeout=10)
