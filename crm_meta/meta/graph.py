"""GraphClient: the one way this service talks to Meta's Graph API."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from crm_meta.infra import metrics
from crm_meta.infra.clock import Clock
from crm_meta.meta import batch, passthrough, usage, versions
from crm_meta.meta.errors import GraphError, ThrottledError, TransientError, classify
from crm_meta.meta.governor import Governor
from crm_meta.meta.settings import MetaSettings
from crm_meta.meta.types import BatchRequest, Headers, JsonObject

log = logging.getLogger(__name__)
_ID = re.compile(r"^(act_)?\d+$")


def appsecret_proof(app_secret: str, token: str) -> str:
    """hex(HMAC-SHA256(key=app secret, msg=token)), required by Meta on token calls."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def endpoint_label(path: str) -> str:
    """A low-cardinality metric label: ids become {id}."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts and re.match(r"^v\d+\.\d+$", parts[0]):
        parts = parts[1:]
    return "/" + "/".join("{id}" if _ID.match(p) else p for p in parts)


def _error_of(response: requests.Response, payload: object) -> GraphError:
    """The classified GraphError of a failed answer, with the wait Meta announced."""
    detail = payload.get("error") if isinstance(payload, dict) else None
    return classify(detail if isinstance(detail, dict) else {}, response.status_code,
                    retry_after=usage.regain_seconds(response.headers))


@dataclass(frozen=True)
class _Exchange:
    """One HTTP exchange with Graph as it goes out."""

    method: str
    path: str
    label: str  # the path as a metric label
    headers: dict[str, str]
    params: JsonObject
    body: JsonObject | None


class GraphClient:
    """Version, timeouts, appsecret_proof, retries with backoff, and Meta's error taxonomy."""

    governor: Governor | None = None  # the runtime sets the shared one

    def __init__(self, settings: MetaSettings, *, clock: Clock | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.base_url = settings.graph_url.rstrip("/")
        self.version = settings.version
        self.app_id = settings.app_id
        self._app_secret = settings.app_secret
        self.timeout = settings.http_timeout
        self.max_retries = settings.http_retries
        self.clock = clock
        self.sleep = sleep
        self._local = threading.local()
        self.pool = passthrough.pool_for(self.base_url)  # thread-safe keep-alive pools
        self.last_app_usage = 0
        # App-wide cool-down after Meta throttles the whole app (domain clock, so the
        # sandbox's clock can age it like everything else).
        self._cooldown_until: datetime | None = None

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url}/{self.version}, app {self.app_id})"

    @property
    def session(self) -> requests.Session:
        # requests.Session is not thread-safe: one per thread, reused for keep-alive.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # The environment's proxy and CA settings for Meta's host, read once here rather than
            # scanned again on every call (requests does that while trust_env is on).
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            session.trust_env = False
            self._local.session = session
        return session

    @property
    def app_token(self) -> str:
        return f"{self.app_id}|{self._app_secret}"

    @property
    def credential(self) -> str:
        """A short fingerprint of the app credential (app id and secret), never the secret."""
        return hashlib.sha256(f"crm_meta:{self.app_token}".encode()).hexdigest()[:16]

    def client_params(self) -> dict[str, str]:
        """The app's credentials for /oauth/access_token calls."""
        return {"client_id": self.app_id, "client_secret": self._app_secret}

    def url(self, path: str, version: str | None = None) -> str:
        return f"{self.base_url}/{version or self.version}/{path.lstrip('/')}"

    # -- the one request path ---------------------------------------------------------------
    def call(self, method: str, path: str, *, token: str | None = None,
             params: JsonObject | None = None, retry: bool | None = None) -> JsonObject | list[Any]:
        """One Graph call with the endpoint's documented method: the JSON body, or a GraphError.

        GET and DELETE carry their parameters in the query (debug_token's `input_token` too:
        the log redaction keeps it out of every log line); POST carries them in the body. The
        token travels in the Authorization header (batches: in the body, see `token_params`).
        """
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Accept": "application/json"}
        http_method = method.upper()
        if token:
            headers["Authorization"] = f"Bearer {token}"
            params.update(self.token_params(token, in_body=False))
        body = None
        if http_method == "POST":
            body, params = params, {}
        if retry is None:
            retry = method.upper() in {"GET", "DELETE"}
        attempts = 1 + (self.max_retries if retry else 0)
        label = endpoint_label(path)
        if self._cooldown_until is not None:
            wait = (self._cooldown_until - self._now()).total_seconds()
            if wait > 0:  # Meta said the app is over budget: never hammer it
                raise ThrottledError("The Meta app is rate limited; waiting before calling again",
                                     code=4).waiting(int(wait) + 1)
            self._cooldown_until = None
        for attempt in range(attempts):
            try:
                return self._once(_Exchange(http_method, path, label, headers, params, body))
            except TransientError as exc:
                if attempt + 1 >= attempts:
                    raise
                delay = min(8.0, 0.25 * 2 ** attempt) * (0.5 + random.random())
                log.info("graph %s %s transient failure (code %s, trace %s); retry in %.2fs",
                         method, label, exc.code, exc.fbtrace_id, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _send(self, out: _Exchange) -> requests.Response:
        """One HTTP exchange with Graph: latency and usage recorded, no answer read yet; a
        timeout or an unreachable host is a TransientError."""
        method, path, label = out.method, out.path, out.label
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.url(path), params=out.params, data=out.body,
                                            headers=out.headers, timeout=self.timeout)
        except requests.Timeout:
            metrics.GRAPH_CALLS.labels(endpoint=label, outcome="timeout").inc()
            raise TransientError(f"Meta did not answer within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            metrics.GRAPH_CALLS.labels(endpoint=label, outcome="unreachable").inc()
            raise TransientError(f"Meta is unreachable ({type(exc).__name__})") from None
        self.answered(method, path, label, started, response.headers)
        return response

    def answered(self, method: str, path: str, label: str, started: float, headers: Headers) -> None:
        """What every answer tells: latency, Meta's usage (the governor), a version upgrade."""
        metrics.GRAPH_LATENCY.labels(endpoint=label).observe(time.perf_counter() - started)
        self.observe_usage(path, headers)
        upgraded = versions.upgrade_warning(headers)
        if upgraded:  # a Marketing call to a version Meta retired: it answered with a newer one
            log.warning("graph %s %s: Meta says %r; set META_GRAPH_API_VERSION to %s", method, label,
                        upgraded, versions.newest(self._now().date()))

    def _once(self, out: _Exchange) -> JsonObject | list[Any]:
        method, label = out.method, out.label
        response = self._send(out)
        self._local.last_headers = response.headers
        self.last_app_usage = usage.app_usage(response.headers)
        if "x-app-usage" in response.headers:
            metrics.APP_USAGE.set(self.last_app_usage)
        if self.last_app_usage >= usage.SLOWDOWN:
            log.warning("meta app usage at %s%% of its budget", self.last_app_usage)
        if self.last_app_usage >= usage.SPENT:
            metrics.APP_THROTTLED.labels(cause="app_usage").inc()
            self._cool_down(60)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict | list) and payload is not True:
            metrics.GRAPH_CALLS.labels(endpoint=label, outcome="malformed").inc()
            raise TransientError("Meta sent a response that is not JSON",
                                 http_status=response.status_code)
        if isinstance(payload, dict) and "error" in payload or response.status_code >= 400:
            exc = _error_of(response, payload)
            if isinstance(exc, ThrottledError) and exc.retry_after is None:
                exc.retry_after = 300  # Meta gave no estimate: back off a generous while
            if isinstance(exc, ThrottledError) and exc.code == 4:
                metrics.APP_THROTTLED.labels(cause="code_4").inc()
                self._cool_down(exc.retry_after or 300)  # code 4 throttles the whole app
            metrics.GRAPH_CALLS.labels(endpoint=label, outcome=exc.kind).inc()
            log.warning("graph %s %s failed: %s code=%s subcode=%s fbtrace_id=%s", method, label,
                        exc.kind, exc.code, exc.subcode, exc.fbtrace_id,
                        extra={"graph": exc.log_fields()})
            raise exc
        metrics.GRAPH_CALLS.labels(endpoint=label, outcome="ok").inc()
        log.debug("graph %s %s %s in %.0fms", method, label, response.status_code,
                  response.elapsed.total_seconds() * 1000)
        return {"success": True} if payload is True else payload

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def _cool_down(self, seconds: float) -> None:
        until = self._now() + timedelta(seconds=seconds)
        self._cooldown_until = max(self._cooldown_until or until, until)

    def get(self, path: str, *, token: str | None = None, **params: object) -> JsonObject:
        found = self.call("GET", path, token=token, params=params)
        if not isinstance(found, dict):
            raise TransientError("Meta sent a list where an object was expected")
        return found

    def last_headers(self) -> dict[str, str]:
        """The headers of this thread's last answer (`Date`, `facebook-api-version`...)."""
        return dict(getattr(self._local, "last_headers", None) or {})

    def ping(self) -> tuple[int, dict[str, str]]:
        """One plain GET of the versioned root, no token: is Meta reachable (DNS, TCP, TLS)?
        Returns status and headers; raises TransientError naming the failure otherwise."""
        try:
            response = self.session.get(self.url(""), timeout=self.timeout,
                                        headers={"Accept": "application/json"})
        except requests.exceptions.SSLError:
            raise TransientError("the TLS handshake with Meta failed") from None
        except requests.ConnectionError as exc:
            cause = "name resolution failed" if "resolve" in str(exc).lower() else "connection failed"
            raise TransientError(f"Meta is unreachable ({cause})") from None
        except requests.RequestException as exc:
            raise TransientError(f"Meta is unreachable ({type(exc).__name__})") from None
        return response.status_code, dict(response.headers)

    # -- pagination --------------------------------------------------------------------------
    def next_page_params(self, page: JsonObject) -> tuple[str, JsonObject] | None:
        """From a `{"data", "paging"}` page, the path and params of the next one (or None)."""
        next_url = (page.get("paging") or {}).get("next")
        if not next_url:
            return None
        parts = urlsplit(next_url)
        base = urlsplit(self.base_url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise GraphError("Meta's paging link points outside the Graph API")
        path = parts.path[len(base.path):] if parts.path.startswith(base.path) else parts.path
        path = re.sub(r"^/v\d+\.\d+", "", path)
        query = {k: v for k, v in parse_qsl(parts.query)
                 if k not in {"access_token", "appsecret_proof", "appsecret_time"}}
        return path, query

    def batch(self, requests_: list[BatchRequest], *, token: str) -> list[JsonObject | GraphError | None]:
        """One Graph batch round trip, the token a top-level parameter as Meta requires; one
        result per request (crm_meta.meta.batch): its body, its GraphError, or None to ask again."""
        answers = self.call("POST", "", retry=True, params={
            "batch": batch.encode(requests_), "include_headers": "false",
            **self.token_params(token, in_body=True)})
        return batch.decode(answers, len(requests_))

    # -- the services' proxy and the shared rate governor -----------------------------------
    def token_params(self, token: str, *, in_body: bool) -> dict[str, str]:
        """A call's parameters for `token`: its appsecret_proof (not for the app's own token), and the
        token itself `in_body` (top-level, as Meta requires of batches) instead of in a header."""
        found = {"access_token": token} if in_body else {}
        if token != self.app_token:
            found["appsecret_proof"] = appsecret_proof(self._app_secret, token)
        return found

    def proof(self, token: str) -> str:
        """The appsecret_proof of a token, for a service that calls Meta itself."""
        return appsecret_proof(self._app_secret, token)

    def observe_usage(self, path: str, headers: Headers) -> None:
        """Every Graph answer's usage headers reach the shared governor (one place for all)."""
        if self.governor is not None:
            self.governor.observe(path, headers)

    def forward(self, request: passthrough.Request, *, token: str,
                proof: str | None = None) -> passthrough.Forwarded:
        """One call passed through as Meta answers it (passthrough.forward), at `request.version` or ours."""
        return passthrough.forward(self, request, endpoint_label(request.path), token=token, proof=proof)
