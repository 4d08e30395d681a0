"""Graph's side of the product's Graph endpoints (the gateway and the services' proxy): Meta's
official SDK set up as any program sets it up, what it makes of an answer, and Graph's error body."""

from __future__ import annotations

from urllib.parse import urlsplit

from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

GRAPH_ERROR_KEYS = {"message", "type", "code", "is_transient", "fbtrace_id"}  # + error_subcode when any


def sdk(graph_url: str, token: str | None, app_secret: str | None = None, *,
        headers: dict | None = None) -> FacebookAdsApi:
    """The SDK pointed at `graph_url` instead of graph.facebook.com (and sending `headers`, e.g. a
    service key, on every call)."""
    session = FacebookSession(access_token=token, app_secret=app_secret)
    session.GRAPH = graph_url
    session.requests.headers.update(headers or {})
    return FacebookAdsApi(session, api_version="v25.0")


def as_sdk_sees_it(response) -> FacebookRequestError:
    """The exception Meta's SDK raises for this test-client answer (facebook_business.api)."""
    return FacebookRequestError("Call was not successful", request_context={},
                                http_status=response.status_code, http_headers=dict(response.headers),
                                body=response.get_data(as_text=True))


def assert_graph_error(response, status: int, code: int, reason: str | None = None) -> dict:
    """Graph's error body (not the product's envelope), with that status and Graph code (and our
    own code, `error_data.reason`, when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) >= GRAPH_ERROR_KEYS and error["code"] == code, error
    assert error["message"].startswith(f"(#{code}) ")
    assert "success" not in response.get_json()  # not our envelope
    if reason is not None:
        assert error["error_data"] == {"reason": reason}, error
    return error


def every_page(response, follow, check_link=None) -> list:
    """The rows of a paged Graph answer (a Flask test response or a `requests` one) and of every
    page its `paging.next` leads to: `follow(link)` fetches each link as it is, after
    `check_link(urlsplit(link))`."""
    rows = []
    while True:
        body = _json_200(response)
        rows += body["data"]
        link = body.get("paging", {}).get("next")
        if not link:
            return rows
        if check_link is not None:
            check_link(urlsplit(link))
        response = follow(link)


def _json_200(response) -> dict:
    if hasattr(response, "get_json"):  # Flask's test response
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()
    assert response.status_code == 200, response.text
    return response.json()
