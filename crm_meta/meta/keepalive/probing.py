"""Talking to Meta about a stored token, and nothing else (no database): debug_token it, and
exchange it for a longer-lived one when it is a token that ends and is near its end. The verdict
is a `Probe`; crm_meta.meta.keepalive.verdicts records it on the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from crm_meta.meta import tokens
from crm_meta.meta.errors import (
    AppMisconfiguredError,
    DomainError,
    GraphError,
    ThrottledError,
    TokenInvalidError,
    TransientError,
)
from crm_meta.meta.graph import GraphClient

EXTEND_WITHIN = timedelta(days=14)  # a user token this close to its end is worth an exchange
EXTEND_AT_MOST_EVERY = timedelta(hours=20)  # Meta's older docs: one exchange a day at most
MIN_GAIN = timedelta(hours=1)  # a "new" token must live at least this much longer to be kept
APP_THROTTLE_CODE = 4  # Meta's "application request limit reached"
# debug_token types of tokens that expire and can be exchanged: user tokens, and Meta's expiring
# (60-day) system-user tokens, refreshed with set_token_expires_in_60_days=true.
SYSTEM_USER = "SYSTEM_USER"
EXTENDABLE_TYPES = frozenset({"USER", SYSTEM_USER})


class ProbeKind(StrEnum):
    """What Meta said about a token (the values are the metrics' and the audit's labels)."""

    VALID = "valid"
    INVALID = "invalid"
    TOKEN_ERROR = "token_error"  # noqa: S105  (a kind of answer, not a secret)
    THROTTLED_NOW = "throttled_now"
    APP_THROTTLED = "app_throttled"
    APP_MISCONFIGURED = "app_misconfigured"  # Meta refuses the app itself: no verdict on the token
    TRANSIENT = "transient"
    ERROR = "error"


@dataclass
class Extension:
    """One fb_exchange_token attempt and whether its token is kept."""

    kept: bool = False
    token: str | None = field(default=None, repr=False)  # never printed
    info: tokens.TokenInfo | None = None
    error: Exception | None = None


@dataclass
class Probe:
    """What Meta said about a token, and what it is based on."""

    kind: ProbeKind
    info: tokens.TokenInfo | None = None
    error: Exception | None = None
    extension: Extension | None = None

    def verdict(self) -> tokens.TokenInfo:
        """Meta's answer about the token: a valid or an invalid probe carries one."""
        if self.info is None:
            raise ValueError(f"a {self.kind} probe carries no token information")
        return self.info

    def failure(self) -> GraphError:
        """Meta's refusal: a token error, a throttle or the app refused carries one."""
        if not isinstance(self.error, GraphError):
            raise ValueError(f"a {self.kind} probe carries no Graph error")
        return self.error


def probe(graph: GraphClient, token: str, *, now: datetime, extension_attempted_at: datetime | None,
          allow_extend: bool) -> Probe:
    """debug_token the stored token; try an extension when it is a user token nearing its end."""
    try:
        info = tokens.inspect(graph, token)
    except AppMisconfiguredError as exc:
        return Probe(ProbeKind.APP_MISCONFIGURED, error=exc)
    except ThrottledError as exc:
        # Code 4 throttles the whole app (Meta's answer, or the client's own cool-down after
        # it): not this connection's state. The sweep stops; the connection stays due.
        return Probe(ProbeKind.APP_THROTTLED if exc.code == APP_THROTTLE_CODE else ProbeKind.THROTTLED_NOW,
                     error=exc)
    except TokenInvalidError as exc:
        return Probe(ProbeKind.TOKEN_ERROR, error=exc)
    except TransientError as exc:
        return Probe(ProbeKind.TRANSIENT, error=exc)
    except (GraphError, DomainError) as exc:
        return Probe(ProbeKind.ERROR, error=exc)
    if not info.is_valid:
        return Probe(ProbeKind.INVALID, info=info)
    result = Probe(ProbeKind.VALID, info=info)
    if allow_extend and should_extend(info, now, extension_attempted_at):
        result.extension = try_extend(graph, token, info)
    return result


def should_extend(info: tokens.TokenInfo, now: datetime, attempted_at: datetime | None) -> bool:
    """Only tokens that end (user, expiring system-user), within EXTEND_WITHIN, at most once per
    EXTEND_AT_MOST_EVERY."""
    if info.token_type not in EXTENDABLE_TYPES or info.expires_at is None:
        return False
    if info.expires_at - now > EXTEND_WITHIN:
        return False
    return attempted_at is None or now - attempted_at >= EXTEND_AT_MOST_EVERY


def try_extend(graph: GraphClient, token: str, info: tokens.TokenInfo) -> Extension:
    """Exchange the token and inspect the new one; keep it only when it is really better."""
    try:
        issued = tokens.exchange_long_lived(graph, token,
                                            system_user=info.token_type == SYSTEM_USER)
        new_info = tokens.inspect(graph, issued.access_token)
    except (GraphError, DomainError) as exc:
        return Extension(error=exc)
    if is_better(info, new_info):
        return Extension(kept=True, token=issued.access_token, info=new_info)
    return Extension(info=new_info)


def is_better(old: tokens.TokenInfo, new: tokens.TokenInfo) -> bool:
    """Valid, same user and type, no scope lost, lives longer, data access no shorter."""
    if not new.is_valid or new.token_type != old.token_type:
        return False
    if old.user_id and new.user_id != old.user_id:
        return False
    if not set(old.scopes) <= set(new.scopes):
        return False
    if old.expires_at is None:
        return False  # nothing outlives "never"
    if new.expires_at is not None and new.expires_at < old.expires_at + MIN_GAIN:
        return False
    old_access, new_access = old.data_access_expires_at, new.data_access_expires_at
    return not (old_access and new_access and new_access < old_access)
