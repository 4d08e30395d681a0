"""HTTP errors, the one table mapping domain errors to HTTP, and the one place that turns any
exception into a JSON envelope or an HTML page."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from crm_meta.http import negotiation
from crm_meta.http.envelope import error_payload
from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.infra.i18n import N_
from crm_meta.meta.errors import (
    AppMisconfiguredError,
    ConnectionChanged,
    ConnectionUnusable,
    DomainError,
    GraphError,
    InvalidCallback,
    InvalidCode,
    InvalidSignedRequest,
    InvalidState,
    MetaRefused,
    NotConnected,
    OAuthDenied,
    PageTokenRequiredError,
    PermissionMissingError,
    ProxyRefused,
    ThrottledError,
    TokenInvalidError,
    TransientError,
    UnknownAsset,
)

log = logging.getLogger(__name__)
JSON_BLUEPRINTS = {"api", "callbacks", "internal", "gateway", "channels", "webhooks"}


class AppError(Exception):
    """An expected failure with a status, a stable code and a human message."""

    status = 400
    code = "bad_request"
    message = N_("Bad request")

    def __init__(self, message: str | None = None, *, code: str | None = None, status=None,
                 retry_after: int | None = None, incident: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.retry_after = retry_after
        self.incident = incident  # support reference of an unexpected failure


class NotAuthenticated(AppError):
    status, code, message = 401, "not_authenticated", N_("Authentication required")


class Forbidden(AppError):
    status, code, message = 403, "forbidden", N_("You are not allowed to do this")


class NotFound(AppError):
    status, code, message = 404, "not_found", N_("Not found")


class MethodNotAllowed(AppError):
    status, code, message = 405, "method_not_allowed", N_("Method not allowed")


class PayloadTooLarge(AppError):
    status, code, message = 413, "payload_too_large", N_("Request too large")


class UnsupportedMediaType(AppError):
    status, code, message = 415, "unsupported_media_type", N_("Unsupported media type")


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", N_("Too many requests; slow down")


class ValidationFailed(AppError):
    status, code, message = 422, "validation_error", N_("Invalid input")


class MetaFailed(AppError):
    status, code, message = 502, "meta_error", N_("Meta returned an error")


class DatabaseUnavailable(AppError):
    status, code, message = 503, "database_unavailable", N_("The database is not reachable; retry shortly")
    retry_seconds = 5  # a PostgreSQL restart or fail-over is usually over by then

    def __init__(self):
        super().__init__(retry_after=self.retry_seconds)


def database_down(exc: SQLAlchemyError) -> bool:
    """Whether a database error means "unreachable right now" (refused, dropped, pool
    exhausted) rather than a bug in a query."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True)
class Rule:
    """How one kind of domain failure reads to callers: status, and the code and message when
    the kind does not carry its own; `retry_after` is a default the error may override."""

    status: int
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    own_retry_after: bool = False


# The one table from domain failures to HTTP, for the API and the pages alike. A key is a
# class, or (class, code) for a code that reads differently from the rest of its class.
RULES: dict = {
    InvalidState: Rule(400),
    OAuthDenied: Rule(400),
    InvalidCallback: Rule(400),
    InvalidCode: Rule(400),
    InvalidSignedRequest: Rule(400),
    UnknownAsset: Rule(404),
    NotConnected: Rule(409),
    ConnectionChanged: Rule(409),
    ConnectionUnusable: Rule(409),
    ProxyRefused: Rule(400),
    (ProxyRefused, "path_not_allowed"): Rule(403),
    MetaRefused: Rule(502),
    DomainError: Rule(400),
    AppMisconfiguredError: Rule(503, "meta_app_misconfigured",
                                N_("The Meta app is misconfigured; an operator must fix its credentials"),
                                retry_after=300),
    ThrottledError: Rule(429, "meta_throttled", N_("Meta is rate limiting this connection; retry later"),
                         retry_after=60, own_retry_after=True),
    TokenInvalidError: Rule(409, "meta_reauth_required", N_("The Meta connection must be reconnected")),
    PageTokenRequiredError: Rule(400, "page_token_required",
                                 N_("This Meta call needs a Page's token, not the user's")),
    PermissionMissingError: Rule(403, "meta_permission_missing",
                                 N_("A Meta permission is missing; grant it again")),
    TransientError: Rule(503, "meta_unavailable", N_("Meta is not answering right now; retry later"),
                         retry_after=30),
    GraphError: Rule(502, "meta_error", MetaFailed.message),
}


def _rule(exc: Exception) -> Rule:
    for kind in type(exc).__mro__:
        rule = RULES.get((kind, getattr(exc, "code", None))) or RULES.get(kind)
        if rule is not None:
            return rule
    raise TypeError(f"no rule for {type(exc).__name__}")


def to_app_error(exc: DomainError | GraphError) -> AppError:
    """How a domain or Graph failure reads to our callers (status, code, message)."""
    rule = _rule(exc)
    retry_after = (getattr(exc, "retry_after", None) if rule.own_retry_after else None) or rule.retry_after
    own = isinstance(exc, DomainError)
    return AppError(rule.message or (exc.message if own else None),
                    code=rule.code or (exc.code if own else None), status=rule.status,
                    retry_after=retry_after)


def callback_failure(exc: AppError | DomainError | GraphError) -> tuple[AppError, str]:
    """The OAuth callback's answer: the contract keeps any Graph failure a 502 meta_error for
    programs; the reason (for people and metrics) names a misconfigured Meta app."""
    if isinstance(exc, GraphError):
        reason = "meta_app_misconfigured" if isinstance(exc, AppMisconfiguredError) else "meta_error"
        return MetaFailed(), reason
    error = exc if isinstance(exc, AppError) else to_app_error(exc)
    return error, error.code


def wants_json() -> bool:
    if request.blueprint in JSON_BLUEPRINTS or request.path.startswith(("/internal/", "/graph/")):
        return True  # a path under /internal/ that matched no route (404/405) is a service's too
    return negotiation.preferred() == "json"  # a tie (*/*) is a page's: HTML


def error_response(error: AppError):
    """Render an AppError for this request: envelope for programs, a page for people."""
    if wants_json():
        response = jsonify(error_payload(error.code, error.message))
    else:
        response = render_template("errors/error.html", status=error.status, code=error.code,
                                   message=_(error.message), incident=error.incident)
        response = Flask.response_class(response, mimetype="text/html")
    response.status_code = error.status
    if error.retry_after:
        response.headers["Retry-After"] = str(int(error.retry_after))
    return response


# What Werkzeug's HTTP errors read as: the code and message of the class with that status.
HTTP_CODES = {kind.status: (kind.code, kind.message) for kind in (
    AppError, NotAuthenticated, Forbidden, NotFound, MethodNotAllowed, PayloadTooLarge,
    UnsupportedMediaType, RateLimited)}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError):
        return error_response(exc)

    @app.errorhandler(GraphError)
    def handle_graph_error(exc: GraphError):
        log.warning("graph call failed", extra={"graph": exc.log_fields()})
        return error_response(to_app_error(exc))

    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError):
        return error_response(to_app_error(exc))

    @app.errorhandler(CryptoError)
    def handle_crypto(exc: CryptoError):
        log.error("stored token unreadable on %s: %s", request.path, exc)
        return error_response(AppError(
            N_("The stored Meta token cannot be read; reconnect, or restore the encryption key"),
            code="token_unreadable", status=409))

    @app.errorhandler(CSRFError)
    def handle_csrf(exc: CSRFError):
        return error_response(AppError(N_("The form expired; reload the page and try again"),
                                       code="csrf_failed", status=400))

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        code, message = HTTP_CODES.get(exc.code or 500, ("http_error", exc.name))
        retry_after = None
        if exc.code == 429:
            retry_after = exc.get_response().headers.get("Retry-After")
        error = AppError(message, code=code, status=exc.code,
                         retry_after=int(retry_after) if retry_after else None)
        response = error_response(error)
        if "Allow" in (exc.get_response().headers if exc.code == 405 else {}):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(SQLAlchemyError)
    def handle_database(exc: SQLAlchemyError):
        if not database_down(exc):
            return handle_unexpected(exc)
        try:
            db.session.rollback()
        except SQLAlchemyError:
            pass  # the connection is gone already; the pool replaces it
        # The page must not look the logged-in user up again (that is a query too).
        g._login_user = current_app.login_manager.anonymous_user()
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    type(getattr(exc, "orig", None) or exc).__name__)
        return error_response(DatabaseUnavailable())

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        db.session.rollback()
        incident = uuid.uuid4().hex[:12]
        # The traceback only where a developer reads it; production logs the incident id.
        log.error("unhandled %s on %s %s (incident %s)", type(exc).__name__, request.method,
                  request.path, incident, exc_info=app.debug or app.testing)
        return error_response(AppError(f"Something went wrong (incident {incident})",
                                       code="internal_error", status=500, incident=incident))
