"""The one place tokens are written and read: encrypted on the way in, opened on the way out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from crm_meta.infra.crypto import CryptoError, TokenCipher
from crm_meta.infra.database import db
from crm_meta.models import MetaChannel, MetaConnection


class Sealed(Protocol):
    """What holds a tenant's encrypted token: a MetaConnection, or a copy of its fields."""

    @property
    def tenant_id(self) -> int: ...

    @property
    def token_ciphertext(self) -> str | None: ...


class SealedPage(Sealed, Protocol):
    """What holds a Page's encrypted token: a MetaChannel, or a copy of its fields."""

    @property
    def asset_id(self) -> str: ...


class TokenStore:
    def __init__(self, cipher: TokenCipher):
        self.cipher = cipher

    @staticmethod
    def context(tenant_id: int) -> str:
        # Binding to the tenant: a ciphertext copied into another tenant's row will not open.
        return f"meta_token:tenant:{tenant_id}"

    def for_tenant(self, tenant_id: int, *, lock: bool = False) -> MetaConnection | None:
        query = db.select(MetaConnection).filter_by(tenant_id=tenant_id)
        if lock:
            query = query.with_for_update()
        row: MetaConnection | None = db.session.scalar(query)
        return row

    def write(self, row: MetaConnection, token: str) -> None:
        row.token_ciphertext = self.cipher.encrypt(token, context=self.context(row.tenant_id))
        row.key_id = self.cipher.current.kid

    def replace(self, row: MetaConnection, token: str) -> None:
        """Store a different token (connect, extension): a new generation of the connection."""
        self.write(row, token)
        row.token_generation = (row.token_generation or 0) + 1

    def read(self, row: Sealed) -> str:
        if row.token_ciphertext is None:
            raise CryptoError(f"no token stored for tenant {row.tenant_id}")
        return self.cipher.decrypt(row.token_ciphertext, context=self.context(row.tenant_id))

    # -- Page tokens (crm_meta.meta.channels): encrypted the same way, bound to tenant and Page --
    @staticmethod
    def page_context(tenant_id: int, page_id: str) -> str:
        return f"meta_page_token:tenant:{tenant_id}:page:{page_id}"

    def write_page_token(self, channel: MetaChannel, token: str) -> None:
        channel.token_ciphertext = self.cipher.encrypt(
            token, context=self.page_context(channel.tenant_id, channel.asset_id))
        channel.key_id = self.cipher.current.kid

    def read_page_token(self, channel: SealedPage) -> str:
        if channel.token_ciphertext is None:  # callers read only channels that hold one
            raise CryptoError(f"no token stored for Page {channel.asset_id}")
        return self.cipher.decrypt(channel.token_ciphertext,
                                   context=self.page_context(channel.tenant_id, channel.asset_id))

    def _rotate_page_tokens(self, batch_size: int) -> int:
        rotated = 0
        while True:
            rows = db.session.scalars(
                db.select(MetaChannel).where(MetaChannel.token_ciphertext.is_not(None),
                                             MetaChannel.key_id != self.cipher.current.kid)
                .limit(batch_size).with_for_update(skip_locked=True)).all()
            if not rows:
                return rotated
            for row in rows:
                self.write_page_token(row, self.read_page_token(row))
            db.session.commit()
            rotated += len(rows)

    def rotate(self, batch_size: int = 100) -> int:
        """Re-encrypt every token (user and Page) not under the current key; safe while the
        service runs."""
        rotated = self._rotate_page_tokens(batch_size)
        while True:
            rows = db.session.scalars(
                db.select(MetaConnection).where(MetaConnection.key_id != self.cipher.current.kid)
                .limit(batch_size).with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return rotated
            for row in rows:
                self.write(row, self.read(row))
            db.session.commit()
            rotated += len(rows)

    def not_current(self) -> list[int]:
        """Tenant ids whose token is still under an older key (locked rows included)."""
        query = (db.select(MetaConnection.tenant_id).where(MetaConnection.key_id != self.cipher.current.kid)
                 .order_by(MetaConnection.tenant_id))
        pages = db.select(MetaChannel.tenant_id).where(MetaChannel.token_ciphertext.is_not(None),
                                                       MetaChannel.key_id != self.cipher.current.kid)
        left = sorted(set(db.session.scalars(query)) | set(db.session.scalars(pages)))
        db.session.rollback()
        return left

    def rotate_all(self, wait: float, *, sleep: Callable[[float], None] | None = None,
                   clock: Callable[[], float] | None = None) -> tuple[int, list[int]]:
        """Rotate until every row is on the current key, retrying rows other sessions hold
        locked for up to `wait` seconds; (tokens re-encrypted, tenant ids still left)."""
        sleep, clock = sleep or time.sleep, clock or time.monotonic
        deadline = clock() + wait
        rotated, pause = 0, 0.2
        while True:
            rotated += self.rotate()
            left = self.not_current()
            remaining = deadline - clock()
            if not left or remaining <= 0:
                return rotated, left
            sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)
