"""The one place tokens are written and read: encrypted on the way in, opened on the way out."""

from __future__ import annotations

from crm_meta.crypto import TokenCipher
from crm_meta.extensions import db
from crm_meta.models import MetaToken


class TokenStore:
    def __init__(self, cipher: TokenCipher):
        self.cipher = cipher

    @staticmethod
    def context(tenant_id: int) -> str:
        # Binding to the tenant: a ciphertext copied into another tenant's row will not open.
        return f"meta_token:tenant:{tenant_id}"

    def for_tenant(self, tenant_id: int, *, lock: bool = False) -> MetaToken | None:
        query = db.select(MetaToken).filter_by(tenant_id=tenant_id)
        if lock:
            query = query.with_for_update()
        return db.session.scalar(query)

    def write(self, row: MetaToken, token: str) -> None:
        row.access_token = self.cipher.encrypt(token, context=self.context(row.tenant_id))
        row.key_id = self.cipher.current.kid

    def replace(self, row: MetaToken, token: str) -> None:
        """Store a different token (connect, extension): a new generation of the connection."""
        self.write(row, token)
        row.token_generation = (row.token_generation or 0) + 1

    def read(self, row: MetaToken) -> str:
        return self.cipher.decrypt(row.access_token, context=self.context(row.tenant_id))

    def rotate(self, batch_size: int = 100) -> int:
        """Re-encrypt every token not under the current key; safe while the service runs."""
        rotated = 0
        while True:
            rows = db.session.scalars(
                db.select(MetaToken).where(MetaToken.key_id != self.cipher.current.kid)
                .limit(batch_size).with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return rotated
            for row in rows:
                self.write(row, self.read(row))
            db.session.commit()
            rotated += len(rows)
