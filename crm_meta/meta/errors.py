"""The domain's errors, free of HTTP: Meta's Graph taxonomy (code, subcode, trace) and the
flows' own refusals (a stable code and a message); crm_meta.http.errors gives each its status."""

from __future__ import annotations

from crm_meta.infra.i18n import N_
from crm_meta.meta.types import JsonObject

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2})
PAGE_TOKEN_REQUIRED = "must be called with a Page Access Token"  # noqa: S105 - a message


class GraphError(Exception):
    """A failed Graph call; `str()` is Meta's message, never a token or secret."""

    kind = "meta_error"

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        # Seconds until Meta takes calls again: a throttle's announced (or chosen) wait.
        self.retry_after: int | None = None

    def log_fields(self) -> JsonObject:
        return {
            "kind": self.kind,
            "code": self.code,
            "subcode": self.subcode,
            "fbtrace_id": self.fbtrace_id,
            "http_status": self.http_status,
        }


class TransientError(GraphError):
    """Worth retrying with backoff: 5xx, codes 1/2, `is_transient`, timeouts, garbled replies."""

    kind = "transient"


class ThrottledError(GraphError):
    """Rate limited by Meta: stop calling until `retry_after` seconds have passed."""

    kind = "throttled"

    def waiting(self, retry_after: int | None) -> ThrottledError:
        """This throttle with the wait Meta announced (None: it named none)."""
        self.retry_after = retry_after
        return self


class TokenInvalidError(GraphError):
    """The token is unusable (190/102): the tenant must reconnect."""

    kind = "token_invalid"


class PermissionMissingError(GraphError):
    """A permission is missing (10, 200-299): ask the user to grant it again."""

    kind = "permission_missing"


class AppMisconfiguredError(GraphError):
    """Meta refuses the app's own credential (e.g. the secret was reset at Meta): app-wide, never
    a verdict on a tenant's token. Nothing is retried; an operator must fix the configuration."""

    kind = "app_misconfigured"


class PageTokenRequiredError(GraphError):
    """A user token on a Page-only edge: Meta answers code 190, "(#190) This method must be
    called with a Page Access Token". The code of a dead token, but the token is fine: the
    caller used the wrong kind. Never a strike against the connection."""

    kind = "page_token_required"


class BadRequestError(GraphError):
    """Anything else Meta refuses (100 bad parameter, 368 policy block...): never retried."""

    kind = "bad_request"


def classify(error: JsonObject, http_status: int, retry_after: int | None = None) -> GraphError:
    """Turn Meta's `{"error": {...}}` body into the matching GraphError."""
    code = _int(error.get("code"))
    message = str(error.get("message") or "Meta returned an error")[:300]
    kind: type[GraphError] = BadRequestError  # anything else Meta refuses
    if code in RATE_LIMIT_CODES:
        kind = ThrottledError
    elif code in TOKEN_CODES and PAGE_TOKEN_REQUIRED in message:
        kind = PageTokenRequiredError
    elif code in TOKEN_CODES:
        kind = TokenInvalidError
    elif code in PERMISSION_CODES:
        kind = PermissionMissingError
    elif code == 1 and error.get("type") == "OAuthException" and 400 <= http_status < 500:
        kind = BadRequestError  # e.g. "Error validating client secret.": a refusal, however often asked
    elif code in TRANSIENT_CODES or error.get("is_transient") or http_status >= 500:
        kind = TransientError
    found = kind(message, code=code, subcode=_int(error.get("error_subcode")),
                 fbtrace_id=error.get("fbtrace_id"), http_status=http_status)
    if isinstance(found, ThrottledError):
        found.waiting(retry_after)
    return found


def app_misconfigured(exc: GraphError) -> AppMisconfiguredError:
    """The same failure, read as Meta refusing the app itself."""
    return AppMisconfiguredError(exc.message, code=exc.code, subcode=exc.subcode,
                                 fbtrace_id=exc.fbtrace_id, http_status=exc.http_status)


def _int(value: object) -> int | None:
    if not isinstance(value, str | int | float):
        return None  # absent, or not a number JSON could carry
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class DomainError(Exception):
    """A refusal of the domain: a stable `code` and a plain-English `message`, no HTTP status
    (crm_meta.http.errors maps each kind to one for the API and the pages)."""

    code = "domain_error"
    message = N_("The request cannot be completed")

    def __init__(self, message: str | None = None, *, code: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code


class InvalidState(DomainError):
    """The OAuth state is unknown, expired, used, or from another browser or user."""

    code, message = "invalid_state", N_("Invalid or expired OAuth state")


class OAuthDenied(DomainError):
    """The person cancelled (or refused) on Meta's dialog."""

    code, message = "oauth_denied", N_("The Meta authorization was cancelled")


class InvalidCallback(DomainError):
    """The callback lacks what Meta always sends (the code)."""

    code, message = "invalid_request", N_("The callback carries no authorization code")


class UnknownAsset(DomainError):
    """An id that is not among the tenant's discovered Meta assets."""

    code, message = "unknown_asset", N_("Not one of this tenant's Meta assets")


class InvalidCode(DomainError):
    """Meta refused a login code from the JavaScript SDK (used, expired, or not this app's)."""

    code = "invalid_code"
    message = "Meta refused the login code (used, expired or from another app); log in with Facebook again"


class NotConnected(DomainError):
    """The tenant has no Meta connection."""

    code, message = "not_connected", N_("This tenant has no Meta connection")


class MetaRefused(DomainError):
    """Meta answered, but not with what the flow needs (no token, an invalid or foreign one)."""

    code, message = "meta_error", N_("Meta returned an error")


class InvalidSignedRequest(DomainError):
    """A signed_request that is forged, malformed or stale."""

    code, message = "invalid_signed_request", N_("Invalid signed_request")


class ConnectionChanged(DomainError):
    """The connection was replaced while it was being checked; the answer was about the old one."""

    code = "connection_changed"
    message = N_("The Meta connection changed during the check; check it again")


class ConnectionUnusable(DomainError):
    """The tenant's connection cannot serve a call now; `reason` is why (a status or not_connected)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message, code=reason)
        self.reason = reason


class ProxyRefused(DomainError):
    """A call the services' proxy does not forward; `code` says why (path_not_allowed, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)
