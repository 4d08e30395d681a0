"""The Sandbox: every piece of emulator state, in memory, behind one lock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from . import config as settings
from .faults import Faults
from .fixtures import Fixtures, build_fixtures
from .tokens import Grant, TokenLedger, expiry, token_id

TOKEN_TYPES = ("USER", "SYSTEM_USER")
INVALIDATION_SUBCODES = (458, 459, 460, 464, 467)


def b64url(data: bytes) -> str:
    """base64url without padding, as Meta's signed_request uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def epoch(moment: datetime | None) -> int:
    """Unix seconds; 0 for "never", as Meta writes it."""
    return int(moment.timestamp()) if moment is not None else 0


class Sandbox:
    """In-memory emulator state: fixtures, codes, tokens, clock, faults, call log, config."""

    def __init__(self, app_id: str, app_secret: str, redirect_uris: list[str] | str, **config):
        self.app_id = str(app_id)
        self.app_secret = str(app_secret)
        if isinstance(redirect_uris, str):
            redirect_uris = [redirect_uris]
        self.redirect_uris = list(redirect_uris)
        self._initial_config = settings.validate(config)
        self.lock = threading.RLock()
        self.generation = 0
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything issued and injected; back to the constructor's settings."""
        with self.lock:
            # Calls still in flight (sleeping on latency) when a reset lands belong to the old
            # generation: they must not appear in the new call log (a test's reset is a clean slate).
            self.generation += 1
            self.config: dict[str, Any] = {**settings.DEFAULTS, **self._initial_config}
            self.offset = timedelta(0)
            self.fixtures: Fixtures = build_fixtures(self.config)
            self.store = TokenLedger()
            self.faults = Faults()  # injected failures: add, take, clear
            self.subscriptions: dict[str, list[str]] = {}  # the app's webhook subscriptions
            self.call_log: deque[dict[str, Any]] = deque(maxlen=self.config["call_log_limit"])
            self._app_calls: deque[float] = deque()
            self._business_calls: dict[str, deque[float]] = {}

    # -- clock -------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox's time: real UTC time plus the offset set by the clock endpoint."""
        return datetime.now(UTC) + self.offset

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the sandbox clock forward (or back, with a negative number)."""
        with self.lock:
            self.offset += timedelta(seconds=seconds)
            return self.clock()

    def clock(self) -> dict[str, Any]:
        """{now, offset_seconds} as the control endpoint reports it."""
        offset = self.offset.total_seconds()
        return {
            "now": self.now().isoformat(),
            "offset_seconds": int(offset) if offset == int(offset) else offset,
        }

    # -- config ------------------------------------------------------------------------
    def update_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge settings (raises ValueError on a bad one); size changes rebuild fixtures."""
        clean = settings.validate(changes)
        with self.lock:
            rebuild = any(
                key in settings.FIXTURE_KEYS and self.config[key] != value for key, value in clean.items()
            )
            self.config.update(clean)
            if rebuild:
                self.fixtures = build_fixtures(self.config)
            if "call_log_limit" in clean:
                self.call_log = deque(self.call_log, maxlen=self.config["call_log_limit"])
            return dict(self.config)

    # -- tokens ------------------------------------------------------------------------
    token_id = staticmethod(token_id)

    def data_access_until(self) -> datetime:
        """When data access granted now would lapse."""
        return self.now() + timedelta(days=self.config["data_access_days"])

    def first_user_id(self) -> str:
        """The default test user (the one with the businesses)."""
        return self.fixtures.users[0]

    def mint(
        self,
        user_id: str | None = None,
        scopes: list[str] | None = None,
        expires_in: int | None = None,
        token_type: str = "USER",  # noqa: S107 - a token kind, not a secret
    ) -> dict[str, Any]:
        """Issue a token directly: {access_token, expires_at, token_id, user_id, type}."""
        kind = token_type.upper()
        if kind not in TOKEN_TYPES:
            raise ValueError(f"type must be one of {', '.join(TOKEN_TYPES)}")
        if expires_in is not None and (isinstance(expires_in, bool) or expires_in < 0):
            raise ValueError("expires_in must be a non-negative number of seconds")
        with self.lock:
            user_id = str(user_id or self.first_user_id())
            self.fixtures.user(user_id)  # validates, creates a synthetic user if needed
            now = self.now()
            system = kind == TOKEN_TYPES[1]
            if scopes is None and not system:
                grant = self.store.user_grant(user_id) or self.store.record_consent(
                    user_id,
                    {*settings.PRODUCT_SCOPES, "public_profile"},
                    set(),
                    self.data_access_until(),
                )
            else:
                wanted = settings.PRODUCT_SCOPES if scopes is None else scopes
                grant = Grant(
                    user_id=user_id,
                    granted={*wanted, "public_profile"},
                    data_access_expires_at=None if system else self.data_access_until(),
                )
            if expires_in is None:
                expires_in = 0 if system else self.config["long_lived_expires_in"]
            expires_at = expiry(now, expires_in)
            long_lived = expires_at is None or expires_in > 86400
            token = self.store.issue(kind, user_id, grant, now, expires_at, long_lived)
            return {
                "access_token": token,
                "expires_at": epoch(expires_at),
                "token_id": token_id(token),
                "user_id": user_id,
                "type": kind,
            }

    def mint_token(self, user_id=None, scopes=None, expires_in=None, token_type="USER") -> str:  # noqa: S107
        """Issue a token directly (tests, benchmarks) and return its string."""
        return self.mint(user_id, scopes, expires_in, token_type)["access_token"]

    def invalidate_user(self, user_id: str, subcode: int = 460) -> None:
        """Make every token of the user issued so far fail (460: password changed)."""
        if subcode not in INVALIDATION_SUBCODES:
            raise ValueError(f"subcode must be one of {INVALIDATION_SUBCODES}")
        with self.lock:
            self.store.invalidate_user(str(user_id), subcode)

    # -- call log and usage ------------------------------------------------------------
    def record_call(self, method: str, path: str, token: str | None, status: int,
                    generation: int | None = None) -> None:
        """Append a Graph call to the log: no token, only its opaque id. A call that began before
        the last reset (`generation` older than now) is not logged."""
        with self.lock:
            if generation is not None and generation != self.generation:
                return
            self.call_log.append(
                {
                    "method": method,
                    "path": path,
                    "time": self.now().isoformat(),
                    "token_id": token_id(token) if token else None,
                    "status": status,
                }
            )

    def calls(self, token_id_: str | None = None, path: str | None = None) -> list[dict]:
        """The call log, optionally only one token's or one path's calls."""
        with self.lock:
            return [
                dict(call)
                for call in self.call_log
                if (token_id_ is None or call["token_id"] == token_id_)
                and (path is None or call["path"] == path)
            ]

    def _count(self, window: deque[float], budget: int) -> tuple[int, bool]:
        now = self.now().timestamp()
        window.append(now)
        while window and window[0] <= now - 3600:
            window.popleft()
        return min(100, len(window) * 100 // budget), len(window) > budget

    def count_app_call(self) -> tuple[int, bool]:
        """Count a call against the hourly app budget: (percent used, budget exceeded)."""
        with self.lock:
            return self._count(self._app_calls, self.config["app_call_budget"])

    def app_usage(self) -> int:
        """The app budget's percent used, without counting a call (Marketing API calls: Meta
        counts them against business use cases, never the app's Graph budget)."""
        with self.lock:
            window, now = self._app_calls, self.now().timestamp()
            recent = sum(1 for moment in window if moment > now - 3600)
            return min(100, recent * 100 // self.config["app_call_budget"])

    def count_business_call(self, business_id: str) -> tuple[int, bool]:
        """Count a call against one business's hourly budget: (percent, exceeded)."""
        with self.lock:
            window = self._business_calls.setdefault(business_id, deque())
            return self._count(window, self.config["business_call_budget"])

    # -- signed requests and fixtures --------------------------------------------------
    def signed_request(self, user_id: str, algorithm: str = "HMAC-SHA256") -> str:
        """A signed_request as Meta posts to the deauthorize and data-deletion callbacks."""
        payload = {
            "algorithm": algorithm,
            "issued_at": int(self.now().timestamp()),
            "user_id": str(user_id),
        }
        encoded = b64url(json.dumps(payload, separators=(",", ":")).encode())
        digest = hmac.new(self.app_secret.encode(), encoded.encode(), hashlib.sha256).digest()
        return f"{b64url(digest)}.{encoded}"

    def users(self) -> list[dict[str, Any]]:
        """The test users and what each can reach (for the consent page and control API)."""
        with self.lock:
            result = []
            for user_id in self.fixtures.users:
                user = self.fixtures.user(user_id)
                access = self.fixtures.access(user_id)
                result.append(
                    {
                        "id": user_id,
                        "name": user["name"],
                        "businesses": access["businesses"],
                        "ad_accounts": len(access["ad_accounts"]),
                        "pages": access["pages"],
                        "whatsapp_business_accounts": access["wabas"],
                    }
                )
            return result
