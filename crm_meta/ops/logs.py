"""Log lines: text or one JSON object per line, each request's id, tenant and actor on its lines.

Every request gets an id (the caller's `X-Request-ID` when it is short and plain, else a new
one), returned in the `X-Request-ID` response header and carried by every line logged while
the request runs, with one line per request at its end (route, status, duration, and Meta's
`fbtrace_id` when a Graph call failed). Messages are always rendered by `record.getMessage()`,
so a process-wide redaction of log records applies to both formats; no field carries a URL
or a query string (the route is the URL rule, e.g. `/crm/meta/data-deletion/<confirmation_code>`).

Off the request's path (issue 21): `configure` puts the handler behind a queue
(crm_meta.ops.logqueue): a request thread only queues its record, with the request's fields.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from sqlalchemy import event, inspect

from crm_meta.models import Tenant
from crm_meta.ops import logqueue, redaction

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the header as WSGI names it (one dict lookup, no Headers)
# Plain ids only: log injection, header injection and huge values all stay out.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
request_log = logging.getLogger("crm_meta.request")


class _RequestIds:
    """Fresh request ids without a system call per request (uuid4 reads os.urandom each time):
    a random prefix per process, drawn again in a forked child, and a counter; 32 hex digits."""

    def __init__(self):
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)  # next() on it is atomic under the GIL

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = _RequestIds()


def request_id_from(header: str | None) -> str:
    """The caller's id when it is safe to echo and log, otherwise a fresh one."""
    if header and SAFE_REQUEST_ID.fullmatch(header):
        return header
    return new_request_id()


def _loaded(entity, column: str):
    """A column's value if already loaded: a log call never queries the database."""
    state = inspect(entity, raiseerr=False)  # None, not an exception raised per record, for
    if state is None:  # a plain record (auth.tenancy's TenantRef): its own value
        return getattr(entity, column, None)
    value = state.dict.get(column)
    if value is None and column == "id" and state.identity:
        value = state.identity[0]
    return value


def request_fields() -> dict:
    """Who and what the current request is about, from what the request already resolved."""
    if not has_request_context():
        return {}
    here, req = g._get_current_object(), request._get_current_object()  # one context lookup each
    principal = here.get("principal")
    tenant = principal.tenant if principal is not None else here.get("tenant")
    actor = principal.actor if principal is not None else None
    user = here.get("_login_user")  # Flask-Login's user, when a page already loaded it
    if actor is None and user is not None and getattr(user, "is_authenticated", False):
        actor = f"user:{_loaded(user, 'id')}"
        tenant_ref = _loaded(user, "tenant_id")
    else:
        tenant_ref = (_loaded(tenant, "slug") or _loaded(tenant, "id")) if tenant is not None else None
    # The slug when this request loaded it (a commit may have expired it on the object since).
    tenant_ref = here.get("tenant_slugs", {}).get(tenant_ref, tenant_ref)
    rule = req.url_rule
    return {"request_id": here.get("request_id"), "tenant": None if tenant_ref is None else str(tenant_ref),
            "actor": actor, "route": rule.rule if rule is not None else None, "method": req.method}


class RequestContextFilter(logging.Filter):
    """Puts the request's fields on every record a handler emits (none outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in request_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        trace = _trace_of(record)
        if trace and not hasattr(record, "fbtrace_id"):
            record.fbtrace_id = trace
        return True


def _trace_of(record: logging.LogRecord) -> str | None:
    graph = getattr(record, "graph", None)
    return graph.get("fbtrace_id") if isinstance(graph, dict) else None


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, then the record's context."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def process_log_record(self, log_data):
        if log_data.get("request_id") == "-":
            log_data.pop("request_id")  # outside a request: no id rather than a placeholder
        first = {key: log_data.pop(key) for key in ("time", "level", "logger", "message") if key in log_data}
        return {**first, **log_data}


def configure(config) -> None:
    """Log lines to stderr for servers and commands (the entry point's call, never the factory's),
    unless something else set logging up (gunicorn's JSON logconfig, a test runner). Records go
    through a queue to a listener thread (`queued`), which `stop()` drains at exit."""
    root = logging.getLogger()
    if config.get("TESTING") or root.handlers:
        return
    root.addHandler(queued(handler(config["LOG_FORMAT"])))  # text, or one JSON object per line
    logging.getLogger("crm_meta").setLevel(config["LOG_LEVEL"])


def queued(target: logging.Handler) -> logging.Handler:
    """`target` behind a queue (crm_meta.ops.logqueue); the request context is read on the
    request's own thread (it reads `g`), so its filter moves to the queue's side."""
    return logqueue.queued(target, caller_filters=(RequestContextFilter,))


def handler(log_format: str, stream=None) -> logging.Handler:
    """A stream handler (stderr by default) in the configured format, with request context and
    redaction (its last filter: it sees the request's fields too). Behind a queue (`queued`)
    the redaction runs on the writer's thread, not the request's."""
    result = logging.StreamHandler(stream)
    result.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    result.addFilter(RequestContextFilter())
    result.addFilter(redaction.RedactingFilter())
    return result


class _RememberGraphTrace(logging.Filter):
    """The GraphClient logs every failed call with Meta's fbtrace_id: keep it for the request line."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace = _trace_of(record)
        if trace and has_request_context():
            g.fbtrace_id = trace
        return True


def _remember_slug(tenant, *args) -> None:
    if has_request_context():
        g.setdefault("tenant_slugs", {})[tenant.id] = tenant.slug


def init_app(app: Flask) -> None:
    """Request ids in and out, and the line that ends every request."""
    graph_log = logging.getLogger("crm_meta.meta.graph")
    if not any(isinstance(f, _RememberGraphTrace) for f in graph_log.filters):
        graph_log.addFilter(_RememberGraphTrace())
    for name in ("load", "refresh"):
        if not event.contains(Tenant, name, _remember_slug):
            event.listen(Tenant, name, _remember_slug)

    @app.before_request
    def assign_request_id():
        here = g._get_current_object()  # `g` and `request` looked up once per hook, not per use
        here.request_id = request_id_from(request.environ.get(REQUEST_ID_ENVIRON))
        here.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        here, req = g._get_current_object(), request._get_current_object()
        request_id = here.get("request_id") or request_id_from(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = here.get("request_started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        fields = {"status": response.status_code, "duration_ms": duration}
        if here.get("fbtrace_id"):
            fields["fbtrace_id"] = here.fbtrace_id
        rule = req.url_rule
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        request_log.log(level, "%s %s %s in %sms", req.method, rule.rule if rule else "(no route)",
                        response.status_code, duration, extra=fields)
        return response
