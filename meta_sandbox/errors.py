"""Meta-shaped Graph errors: the exception, the body and the usual messages."""

from __future__ import annotations

import secrets
import string
from typing import Any

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
APP_LIMIT_CODE = 4  # the application as a whole is throttled

_TRACE_ALPHABET = string.ascii_letters + string.digits

DEFAULT_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    102: "Session key invalid or no longer valid",
    200: "(#200) Permissions error",
    341: "(#341) Application limit reached",
    368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}

TOKEN_MESSAGES = {
    458: "Error validating access token: The user has not authorized application {app_id}.",
    459: (
        "Error validating access token: You cannot access the app till you log in to "
        "www.facebook.com and follow the instructions given."
    ),
    460: (
        "Error validating access token: The session has been invalidated because the user "
        "changed their password or Facebook has changed the session for security reasons."
    ),
    463: ("Error validating access token: Session has expired on {expired}. The current time is {now}."),
    464: (
        "Error validating access token: Sessions for the user are not allowed because the "
        "user is not a confirmed user."
    ),
    467: "Error validating access token: The session is invalid because the user logged out.",
}

UNSUPPORTED = (
    "Unsupported {method} request. Object with ID '{obj}' does not exist, cannot be loaded "
    "due to missing permissions, or does not support this operation. Please read the Graph "
    "API documentation at https://developers.facebook.com/docs/graph-api"
)


def fbtrace_id() -> str:
    """A random trace id shaped like Meta's."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


def default_status(code: int) -> int:
    """The HTTP status Meta uses for an error code."""
    if code in (1, 2):
        return 500
    if 200 <= code <= 299:
        return 403
    return 400


def default_message(code: int) -> str:
    """Meta's usual message for an error code."""
    if code in DEFAULT_MESSAGES:
        return DEFAULT_MESSAGES[code]
    if 80000 <= code <= 80014:
        return (
            f"(#{code}) There have been too many calls from this business. Wait a bit and "
            "try again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
        )
    if code == 190:
        return "Error validating access token: The session is invalid."
    return f"(#{code}) Error injected by the Meta sandbox"


class GraphRefusal(Exception):
    """A failure answered with Meta's error body and HTTP status."""

    def __init__(
        self,
        message: str,
        code: int,
        *,
        subcode: int | None = None,
        type_: str = "OAuthException",
        status: int | None = None,
        is_transient: bool | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.type = type_
        self.status = status or default_status(code)
        self.is_transient = code in (1, 2) if is_transient is None else is_transient
        self.user_title = user_title
        self.user_msg = user_msg
        self.headers = dict(headers or {})

    def body(self, trace_id: str) -> dict[str, Any]:
        """The JSON body: {"error": {...}}; error_subcode and user texts only when set."""
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.is_transient
        if self.user_title:
            err["error_user_title"] = self.user_title
        if self.user_msg:
            err["error_user_msg"] = self.user_msg
        err["fbtrace_id"] = trace_id
        return {"error": err}


def bad_param(message: str, subcode: int | None = None) -> GraphRefusal:
    """Code 100: a bad or missing parameter."""
    return GraphRefusal(message, 100, subcode=subcode)


def unknown_path(path: str) -> GraphRefusal:
    """Code 2500: the path does not name anything."""
    return GraphRefusal(f"Unknown path components: {path}", 2500)


def unsupported(method: str, obj: str) -> GraphRefusal:
    """Code 100 / 33: object missing, invisible, or method not supported on it."""
    text = UNSUPPORTED.format(method=method.lower(), obj=obj)
    return GraphRefusal(text, 100, subcode=33, type_="GraphMethodException")


def token_error(subcode: int | None, message: str) -> GraphRefusal:
    """Code 190: the access token cannot be used; Meta adds WWW-Authenticate."""
    header = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
    return GraphRefusal(message, 190, subcode=subcode, headers={"WWW-Authenticate": header})


def permission_error(message: str, code: int = 200) -> GraphRefusal:
    """Code 200 (HTTP 403) or 10 (HTTP 400): a permission the token lacks."""
    return GraphRefusal(message, code, status=403 if code == 200 else 400)
