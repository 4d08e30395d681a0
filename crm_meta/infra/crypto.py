"""Token encryption at rest: AES-256-GCM, bound to a context (the tenant), keyed by a keyring."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"


class CryptoError(RuntimeError):
    """A key is missing or a ciphertext cannot be opened; never carries the plaintext."""


@dataclass(frozen=True)
class Key:
    kid: str
    material: bytes = b""

    def __repr__(self) -> str:  # keep key material out of logs and tracebacks
        return f"Key(kid={self.kid!r})"


def derive_key(secret: str) -> Key:
    """A urlsafe-base64 32-byte key is used as is; any other string goes through HKDF-SHA256."""
    if not secret:
        raise CryptoError("ENCRYPTION_KEY is empty: tokens cannot be stored or read")
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raw = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"crm-meta", info=b"token-cipher"
        ).derive(secret.encode())
    kid = hashlib.sha256(b"kid:" + raw).hexdigest()[:12]
    return Key(kid=kid, material=raw)


class TokenCipher:
    """Encrypts with the current key; decrypts with any key of the ring."""

    def __init__(self, current: str, previous: list[str] | tuple[str, ...] = ()):
        self.current = derive_key(current)
        self._keys = {self.current.kid: self.current}
        for secret in previous:
            key = derive_key(secret)
            self._keys.setdefault(key.kid, key)

    @staticmethod
    def _aad(context: str, kid: str) -> bytes:
        return f"crm-meta:{VERSION}:{kid}:{context}".encode()

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Return `v1.<kid>.<base64 nonce+ciphertext>`; only `context` can open it again."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.current.material).encrypt(
            nonce, plaintext.encode(), self._aad(context, self.current.kid)
        )
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}.{self.current.kid}.{blob}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        """Open a ciphertext made for `context`; CryptoError if the key or context is wrong."""
        kid = self.key_id(ciphertext)
        key = self._keys.get(kid)
        if key is None:
            raise CryptoError(f"no key {kid} in the keyring (ENCRYPTION_KEYS_PREVIOUS?)")
        blob = ciphertext.split(".", 2)[2]
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        try:
            plain = AESGCM(key.material).decrypt(raw[:12], raw[12:], self._aad(context, kid))
        except InvalidTag:
            raise CryptoError("ciphertext does not open in this context (tampered or moved)") from None
        return plain.decode()

    @staticmethod
    def key_id(ciphertext: str) -> str:
        parts = (ciphertext or "").split(".", 2)
        if len(parts) != 3 or parts[0] != VERSION:
            raise CryptoError("not a crm-meta ciphertext")
        return parts[1]
