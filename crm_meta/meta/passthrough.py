"""The Graph client's pass-through calls (the services' proxy and the drop-in gateway): one
call, not retried, Meta's status, headers and body handed back as they came.

They go out through urllib3's pools directly: the answer is passed on untouched, so what
requests adds on top (cookie jars, setting merges, response decoding) is only cost on the
gateway's hot path. The environment's proxy and CA settings are read once, as requests would.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests
import urllib3

from crm_meta.infra import metrics
from crm_meta.meta import usage
from crm_meta.meta.errors import GraphError, TransientError, classify
from crm_meta.meta.types import Headers

# What a caller of the services' proxy may not choose: we add the tenant's own.
CALLER_SECRETS = frozenset({"access_token", "appsecret_proof", "appsecret_time"})


@dataclass
class Forwarded:
    """Meta's answer to a proxied call, as it came: status, headers, raw body; `error` classified."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    error: GraphError | None = None


@dataclass(frozen=True)
class Request:
    """A call to pass through: method, Graph path, query pairs, form fields, and the version
    (the client's own when None)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: dict[str, str] | None = None
    version: str | None = None


class Pools:
    """Keep-alive connections to Meta's host: its own pool, found once per base URL, or the
    environment's proxy when one is set. (A PoolManager parses each URL twice more and works
    out the pool's key on every call: ~50 us of a pass-through call.)"""

    def __init__(self, proxy: str | None, ca_certs: str | None):
        self.ca_certs = ca_certs
        self.proxied = urllib3.ProxyManager(proxy, maxsize=32, ca_certs=ca_certs) if proxy else None
        self._hosts: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}

    def urlopen(self, method: str, base_url: str, target: str, **options: Any) -> urllib3.BaseHTTPResponse:
        """One exchange for `target` (`/<version>/<path>?<query>`) below `base_url`."""
        if self.proxied is not None:  # the proxy needs the absolute URL (or a tunnel): its manager's
            return self.proxied.urlopen(method, base_url + target, **options)
        found = self._hosts.get(base_url)
        if found is None:
            tls = {"ca_certs": self.ca_certs} if base_url.startswith("https:") else {}
            found = (urllib3.connection_from_url(base_url, maxsize=32, **tls), urlsplit(base_url).path)
            self._hosts[base_url] = found  # a race makes two pools once; each works
        pool, prefix = found
        return pool.urlopen(method, prefix + target, **options)


class Client(Protocol):
    """What a pass-through call uses of the Graph client (crm_meta.meta.graph.GraphClient)."""

    pool: Pools
    base_url: str
    version: str
    timeout: float

    def proof(self, token: str) -> str: ...

    def answered(self, method: str, path: str, label: str, started: float, headers: Headers) -> None: ...


def pool_for(base_url: str) -> Pools:
    """Keep-alive pools to Meta's host, through the environment's proxy when one is set."""
    proxy = requests.utils.get_environ_proxies(base_url).get(urlsplit(base_url).scheme)
    return Pools(proxy, os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))


def error_of(status: int, headers: Headers, body: bytes) -> GraphError:
    """The classified GraphError of a failed answer, with the wait Meta announced."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    detail = payload.get("error") if isinstance(payload, dict) else None
    return classify(detail if isinstance(detail, dict) else {}, status,
                    retry_after=usage.regain_seconds(headers))


def forward(client: Client, request: Request, label: str, *, token: str,
            proof: str | None = None) -> Forwarded:
    """One call with the tenant's token and its proof (`proof`, else computed here; any token
    or proof the caller sent is dropped)."""
    method, path = request.method, request.path
    query = [(k, v) for k, v in request.query if k not in CALLER_SECRETS]
    query.append(("appsecret_proof", proof or client.proof(token)))
    form = {k: v for k, v in (request.form or {}).items() if k not in CALLER_SECRETS}
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
    body = None
    if form:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    target = f"/{request.version or client.version}/{path.lstrip('/')}?{urlencode(query)}"
    started = time.perf_counter()
    try:
        response = client.pool.urlopen(method.upper(), client.base_url, target, body=body, headers=headers,
                                       redirect=False, retries=False,
                                       timeout=urllib3.Timeout(total=client.timeout))
    except urllib3.exceptions.TimeoutError:
        metrics.GRAPH_CALLS.labels(endpoint=label, outcome="timeout").inc()
        raise TransientError(f"Meta did not answer within {client.timeout:g}s") from None
    except urllib3.exceptions.HTTPError as exc:
        metrics.GRAPH_CALLS.labels(endpoint=label, outcome="unreachable").inc()
        raise TransientError(f"Meta is unreachable ({type(exc).__name__})") from None
    client.answered(method, path, label, started, response.headers)
    error = error_of(response.status, response.headers, response.data) if response.status >= 400 else None
    metrics.GRAPH_CALLS.labels(endpoint=label, outcome=error.kind if error else "ok").inc()
    return Forwarded(response.status, response.headers, response.data, error)
