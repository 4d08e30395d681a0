"""Grants, access tokens and authorization codes, with Meta's validity rules."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Scopes whose data access never lapses (reference: "exempt"); all others do.
DATA_ACCESS_EXEMPT_PREFIXES = ("ads_", "pages_")
DATA_ACCESS_EXEMPT = frozenset({"business_management", "read_insights", "public_profile"})

LONG_LIVED_THRESHOLD = 86400  # a token living longer than a day counts as long-lived


def needs_data_access(scope: str) -> bool:
    """True when the scope stops working after data access expires."""
    return not (scope in DATA_ACCESS_EXEMPT or scope.startswith(DATA_ACCESS_EXEMPT_PREFIXES))


def token_id(token: str) -> str:
    """An opaque, stable id of a token (never the token itself)."""
    return "tok_" + hashlib.sha256(token.encode()).hexdigest()[:20]


def _random_token() -> str:
    return "EAA" + "G" + secrets.token_urlsafe(96).replace("-", "x").replace("_", "Z")


@dataclass
class Grant:
    """What a user (or a Login for Business configuration) gave the app."""

    user_id: str
    granted: set[str]
    declined: set[str] = field(default_factory=set)
    data_access_expires_at: datetime | None = None  # None: never (system users)
    business_ids: frozenset[str] | None = None  # the businesses shared; None: every one

    def data_access_expired(self, now: datetime) -> bool:
        """True once data access has lapsed."""
        return self.data_access_expires_at is not None and now >= self.data_access_expires_at


@dataclass
class TokenRecord:
    """One issued access token."""

    id: str
    kind: str  # USER, SYSTEM_USER, PAGE
    user_id: str
    grant: Grant
    issued_at: datetime
    expires_at: datetime | None  # None: never
    seq: int
    long_lived: bool
    page_id: str | None = None


@dataclass
class CodeRecord:
    """One authorization code from the dialog."""

    user_id: str
    grant: Grant
    kind: str
    redirect_uri: str
    created_at: datetime
    used: bool = False


class TokenLedger:
    """Issued tokens and codes, and the per-user events that invalidate tokens."""

    def __init__(self) -> None:
        self.tokens: dict[str, TokenRecord] = {}
        self.codes: dict[str, CodeRecord] = {}
        self.app_tokens: set[str] = set()
        self.user_grants: dict[str, Grant] = {}
        self.revoked: dict[str, int] = {}  # user_id -> last seq revoked (458)
        self.invalidated: dict[str, tuple[int, int]] = {}  # user_id -> (seq, subcode)
        self.page_tokens: dict[tuple[str, str], str] = {}
        self.seq = 0

    def issue(
        self,
        kind: str,
        user_id: str,
        grant: Grant,
        now: datetime,
        expires_at: datetime | None,
        long_lived: bool,
        page_id: str | None = None,
    ) -> str:
        """Store a new token and return its string."""
        self.seq += 1
        token = _random_token()
        self.tokens[token] = TokenRecord(
            id=token_id(token),
            kind=kind,
            user_id=user_id,
            grant=grant,
            issued_at=now,
            expires_at=expires_at,
            seq=self.seq,
            long_lived=long_lived,
            page_id=page_id,
        )
        return token

    def issue_code(self, record: CodeRecord) -> str:
        """Store an authorization code and return it."""
        code = "AQ" + secrets.token_urlsafe(120)
        self.codes[code] = record
        return code

    def issue_app_token(self, app_id: str) -> str:
        """An app token as client_credentials returns it: APP_ID|opaque."""
        token = f"{app_id}|{secrets.token_urlsafe(20)}"
        self.app_tokens.add(token)
        return token

    def problem(self, record: TokenRecord, now: datetime) -> int | None:
        """The 190 subcode that makes the token unusable, or None if it is valid."""
        revoked = self.revoked.get(record.user_id)
        if revoked is not None and record.seq <= revoked:
            return 458
        invalid = self.invalidated.get(record.user_id)
        if invalid is not None and record.seq <= invalid[0]:
            return invalid[1]
        if record.expires_at is not None and now >= record.expires_at:
            return 463
        return None

    def revoke_user(self, user_id: str) -> None:
        """The user removed the app: every token so far fails with 458."""
        self.revoked[user_id] = self.seq
        self.user_grants.pop(user_id, None)

    def invalidate_user(self, user_id: str, subcode: int) -> None:
        """Every token of the user so far fails with the given subcode (e.g. 460)."""
        if subcode == 458:
            self.revoke_user(user_id)
        else:
            self.invalidated[user_id] = (self.seq, subcode)

    def user_grant(self, user_id: str) -> Grant | None:
        """The user's current grant to the app, if any."""
        return self.user_grants.get(user_id)

    def record_consent(
        self,
        user_id: str,
        granted: set[str],
        declined: set[str],
        data_access_until: datetime,
        business_ids: frozenset[str] | None = None,
    ) -> Grant:
        """Merge one pass through the dialog into the user's grant (permissions add up)."""
        grant = self.user_grants.get(user_id)
        if grant is None:
            grant = Grant(user_id=user_id, granted=set(), declined=set())
            self.user_grants[user_id] = grant
        grant.granted = (grant.granted - declined) | granted
        grant.declined = (grant.declined - granted) | declined
        grant.data_access_expires_at = data_access_until
        grant.business_ids = business_ids
        return grant

    def page_token(self, parent: TokenRecord, page_id: str, now: datetime) -> str:
        """The page token a user token gets for a page (stable per user token)."""
        key = (parent.id, page_id)
        token = self.page_tokens.get(key)
        if token is None:
            # Page tokens from a long-lived user token never expire.
            expires = None if parent.long_lived else parent.expires_at
            token = self.issue("PAGE", parent.user_id, parent.grant, now, expires, parent.long_lived, page_id)
            self.page_tokens[key] = token
        return token


def expiry(now: datetime, expires_in: int | None) -> datetime | None:
    """Expiry time from a lifetime in seconds (None or 0: never)."""
    return now + timedelta(seconds=expires_in) if expires_in else None
