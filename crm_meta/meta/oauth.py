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

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from sqlalchemy import delete, update

from crm_meta.infra.database import db, rowcount
from crm_meta.meta.errors import InvalidState
from crm_meta.meta.settings import MetaSettings
from crm_meta.models import OAuthState

STATE_TTL_SECONDS = 300


@dataclass(frozen=True)
class MetaDialog:
    """Meta's login dialog as an OAuth 2 client (the app, the dialog, the registered callback,
    what it asks for): Authlib builds its authorization URL. The code exchange goes through
    GraphClient (tokens.exchange_code), so nothing else is kept."""

    client_id: str
    authorize_url: str
    redirect_uri: str
    scopes: tuple[str, ...]
    config_id: str  # a Facebook Login for Business configuration: replaces `scope` when set

    def authorization_url(self, *, state: str, rerequest: bool) -> str:
        """The dialog URL for this state; `rerequest` asks again for permissions once declined."""
        extra = {"config_id": self.config_id} if self.config_id else {"scope": ",".join(self.scopes)}
        if rerequest:
            extra["auth_type"] = "rerequest"
        return str(prepare_grant_uri(self.authorize_url, self.client_id, "code",
                                     redirect_uri=self.redirect_uri, state=state, **extra))


def meta_dialog(settings: MetaSettings) -> MetaDialog:
    """The dialog of the configured Graph version (the same version as every Graph call)."""
    return MetaDialog(client_id=settings.app_id,
                      authorize_url=f"{settings.dialog_url}/{settings.version}/dialog/oauth",
                      redirect_uri=settings.redirect_uri, scopes=settings.scopes,
                      config_id=settings.login_config_id)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class AuthorizationRequest:
    auth_url: str
    state: str
    expires_in: int = STATE_TTL_SECONDS


@dataclass(frozen=True)
class Asker:
    """Who asks for an authorization, and how: what its state remembers until the callback."""

    tenant_id: int
    user_ref: str
    rerequest: bool = False


def start_authorization(dialog: MetaDialog, asker: Asker, *, browser_secret: str,
                        now: datetime) -> AuthorizationRequest:
    """Build Meta's dialog URL and remember its state for five minutes."""
    state = secrets.token_urlsafe(32)
    url = dialog.authorization_url(state=state, rerequest=asker.rerequest)
    tenant_id, user_ref, rerequest = asker.tenant_id, asker.user_ref, asker.rerequest
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
    return AuthorizationRequest(auth_url=url, state=state)


def _same_principal(caller: tuple[int, str], row: OAuthState) -> bool:
    tenant_id, actor = caller
    same_actor = hmac.compare_digest(actor.encode(), row.user_ref.encode())
    return same_actor and tenant_id == row.tenant_id


def consume_state(*, state: str | None, browser_secret: str | None, now: datetime,
                  caller: tuple[int, str] | None = None) -> Asker:
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
    claimed = rowcount(db.session.execute(
        update(OAuthState)
        .where(OAuthState.state_hash == state_hash, OAuthState.used_at.is_(None))
        .values(used_at=now)
    ))
    db.session.commit()
    if claimed != 1:
        raise InvalidState()
    return Asker(tenant_id=row.tenant_id, user_ref=row.user_ref, rerequest=row.rerequest)
