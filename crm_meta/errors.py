"""Domain errors, and the one place that turns any exception into JSON or an HTML page."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from crm_meta.crypto import CryptoError
from crm_meta.envelope import error_payload
from crm_meta.extensions import db
from crm_meta.meta.errors import (
    AppMisconfiguredError,
    ConnectionUnusable,
    GraphError,
    PermissionMissingError,
    ProxyRefused,
    ThrottledError,
    TokenInvalidError,
    TransientError,
)

log = logging.getLogger(__name__)
JSON_BLUEPRINTS = {"api", "callbacks", "internal"}


class AppError(Exception):
    """An expected failure with a status, a stable code and a human message."""

    status = 400
    code = "bad_request"
    message = "Bad request"

    def __init__(self, message: str | None = None, *, code: str | None = None, status=None,
                 retry_after: int | None = None, incident: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.retry_after = retry_after
        self.incident = incident  # support reference of an unexpected failure


class NotAuthenticated(AppError):
    status, code, message = 401, "not_authenticated", "Authentication required"


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "You are not allowed to do this"


class NotFound(AppError):
    status, code, message = 404, "not_found", "Not found"


class ValidationFailed(AppError):
    status, code, message = 422, "validation_error", "Invalid input"


class InvalidState(AppError):
    status, code, message = 400, "invalid_state", "Invalid or expired OAuth state"


class OAuthDenied(AppError):
    status, code, message = 400, "oauth_denied", "The Meta authorization was cancelled"


class UnknownAsset(AppError):
    status, code, message = 404, "unknown_asset", "Not one of this tenant's Meta assets"


class NotConnected(AppError):
    status, code, message = 409, "not_connected", "This tenant has no Meta connection"


class MetaFailed(AppError):
    status, code, message = 502, "meta_error", "Meta returned an error"


class DatabaseUnavailable(AppError):
    status, code, message = 503, "database_unavailable", "The database is not reachable; retry shortly"
    retry_seconds = 5  # a PostgreSQL restart or fail-over is usually over by then

    def __init__(self):
        super().__init__(retry_after=self.retry_seconds)


def database_down(exc: SQLAlchemyError) -> bool:
    """Whether a database error means "unreachable right now" (refused, dropped, pool
    exhausted) rather than a bug in a query."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def from_graph_error(exc: GraphError) -> AppError:
    """How a Graph failure reads to our callers."""
    if isinstance(exc, AppMisconfiguredError):
        return AppError("The Meta app is misconfigured; an operator must fix its credentials",
                        code="meta_app_misconfigured", status=503, retry_after=300)
    if isinstance(exc, ThrottledError):
        return AppError("Meta is rate limiting this connection; retry later", code="meta_throttled",
                        status=429, retry_after=exc.retry_after or 60)
    if isinstance(exc, TokenInvalidError):
        return AppError("The Meta connection must be reconnected", code="meta_reauth_required",
                        status=409)
    if isinstance(exc, PermissionMissingError):
        return AppError("A Meta permission is missing; grant it again", code="meta_permission_missing",
                        status=403)
    if isinstance(exc, TransientError):
        return AppError("Meta is not answering right now; retry later", code="meta_unavailable",
                        status=503, retry_after=30)
    return MetaFailed()


def wants_json() -> bool:
    if request.blueprint in JSON_BLUEPRINTS or request.path.startswith("/internal/"):
        return True  # a path under /internal/ that matched no route (404/405) is a service's too
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


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


HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("not_authenticated", "Authentication required"),
    403: ("forbidden", "You are not allowed to do this"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Request too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests; slow down"),
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError):
        return error_response(exc)

    @app.errorhandler(GraphError)
    def handle_graph_error(exc: GraphError):
        log.warning("graph call failed", extra={"graph": exc.log_fields()})
        return error_response(from_graph_error(exc))

    @app.errorhandler(ConnectionUnusable)
    def handle_unusable(exc: ConnectionUnusable):
        return error_response(AppError(exc.message, code=exc.reason, status=409))

    @app.errorhandler(ProxyRefused)
    def handle_proxy_refused(exc: ProxyRefused):
        status = 403 if exc.code == "path_not_allowed" else 400
        return error_response(AppError(exc.message, code=exc.code, status=status))

    @app.errorhandler(CryptoError)
    def handle_crypto(exc: CryptoError):
        log.error("stored token unreadable on %s: %s", request.path, exc)
        return error_response(AppError(
            "The stored Meta token cannot be read; reconnect, or restore the encryption key",
            code="token_unreadable", status=409))

    @app.errorhandler(CSRFError)
    def handle_csrf(exc: CSRFError):
        return error_response(AppError("The form expired; reload the page and try again",
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
