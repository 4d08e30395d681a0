"""The authorization-code flow's first half: Authlib builds the URL, states live server-side.

No PKCE: Meta's web login dialog silently drops `code_challenge`, then refuses an exchange
that carries a `code_verifier`. CSRF protection is the single-use state, bound to tenant,
user and browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from sqlalchemy import delete, update

from crm_meta.infra.database import db
from crm_meta.meta.errors import InvalidState
from crm_meta.meta.settings import MetaSettings
from crm_meta.models import OAuthState

STATE_TTL_SECONDS = 300


class MetaDialog:
    """Meta's login dialog as an OAuth 2 client: Authlib builds its authorization URL. The
    code exchange goes through GraphClient (tokens.exchange_code), so nothing else is kept."""

    def __init__(self, *, client_id: str, authorize_url: str):
        self.client_id = client_id
        self.authorize_url = authorize_url

    def create_authorization_url(self, redirect_uri: str, *, state: str, **params) -> dict:
        """{"url", "state"}: the dialog URL for this redirect URI, state and extra parameters."""
        url = prepare_grant_uri(self.authorize_url, self.client_id, "code", redirect_uri=redirect_uri,
                                state=state, **params)
        return {"url": url, "state": state}


def meta_dialog(settings: MetaSettings) -> MetaDialog:
    """The dialog of the configured Graph version (the same version as every Graph call)."""
    return MetaDialog(client_id=settings.app_id,
                      authorize_url=f"{settings.dialog_url}/{settings.version}/dialog/oauth")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class AuthorizationRequest:
    auth_url: str
    state: str
    expires_in: int = STATE_TTL_SECONDS


@dataclass(frozen=True)
class ConsumedState:
    tenant_id: int
    user_ref: str
    rerequest: bool


def start_authorization(*, dialog: MetaDialog, now: datetime, tenant_id: int, user_ref: str,
                        browser_secret: str, redirect_uri: str, scopes: list[str],
                        config_id: str = "", rerequest: bool = False) -> AuthorizationRequest:
    """Build Meta's dialog URL and remember its state for five minutes."""
    state = secrets.token_urlsafe(32)
    extra = {"config_id": config_id} if config_id else {"scope": ",".join(scopes)}
    if rerequest:
        extra["auth_type"] = "rerequest"
    built = dialog.create_authorization_url(redirect_uri, state=state, **extra)
    state_hash = _digest(state)
    db.session.execute(delete(OAuthState).where(OAuthState.expires_at < now - timedelta(hours=1)))
    db.session.add(OAuthState(
        state_hash=state_hash,
        tenant_id=tenant_id,
        user_ref=user_ref,
        browser_hash=_digest(browser_secret),
        rerequest=rerequest,
        created_at=now,
        expires_at=now + timedelta(seconds=STATE_TTL_SECONDS),
    ))
    db.session.commit()
    return AuthorizationRequest(auth_url=built["url"], state=state)


def _same_principal(caller: tuple[int, str], row: OAuthState) -> bool:
    tenant_id, actor = caller
    same_actor = hmac.compare_digest(actor.encode(), row.user_ref.encode())
    return same_actor and tenant_id == row.tenant_id


def consume_state(*, state: str | None, browser_secret: str | None, now: datetime,
                  caller: tuple[int, str] | None = None) -> ConsumedState:
    """Accept a state once: known, fresh, unused, from the browser that asked and, when the
    callback carries a credential, from the principal (tenant and subject) that asked."""
    if not state or len(state) > 200 or not browser_secret:
        raise InvalidState()
    state_hash = _digest(state)
    row = db.session.get(OAuthState, state_hash)
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise InvalidState()
    if not hmac.compare_digest(_digest(browser_secret), row.browser_hash):
        raise InvalidState()
    if caller is not None and not _same_principal(caller, row):
        raise InvalidState()  # someone else is logged in to this browser (or fixed its cookie)
    # The conditional update is the single-use guarantee, even for two racing callbacks.
    claimed = db.session.execute(
        update(OAuthState)
        .where(OAuthState.state_hash == state_hash, OAuthState.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        raise InvalidState()
    return ConsumedState(tenant_id=row.tenant_id, user_ref=row.user_ref, rerequest=row.rerequest)
