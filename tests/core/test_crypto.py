"""Token encryption: authenticated, tenant-bound, keyed by a ring, never a plaintext fallback."""

import base64
import os

import pytest

from crm_meta.infra.crypto import CryptoError, TokenCipher, derive_key

TOKEN = "EAAtesttoken1234567890"


def test_round_trip_and_key_id():
    cipher = TokenCipher("current-key")
    sealed = cipher.encrypt(TOKEN, context="tenant:1")
    assert TOKEN not in sealed
    assert sealed.startswith(f"v1.{cipher.current.kid}.")
    assert cipher.decrypt(sealed, context="tenant:1") == TOKEN


def test_each_encryption_differs():
    cipher = TokenCipher("k")
    assert cipher.encrypt(TOKEN, context="c") != cipher.encrypt(TOKEN, context="c")


def test_ciphertext_moved_to_another_tenant_does_not_open():
    cipher = TokenCipher("k")
    sealed = cipher.encrypt(TOKEN, context="tenant:1")
    with pytest.raises(CryptoError):
        cipher.decrypt(sealed, context="tenant:2")


def test_tampering_is_detected():
    cipher = TokenCipher("k")
    sealed = cipher.encrypt(TOKEN, context="t")
    head, blob = sealed.rsplit(".", 1)
    flipped = blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1]
    with pytest.raises(CryptoError):
        cipher.decrypt(f"{head}.{flipped}", context="t")


def test_previous_keys_decrypt_and_rotation_is_detectable():
    old = TokenCipher("old-key")
    sealed = old.encrypt(TOKEN, context="t")
    ring = TokenCipher("new-key", ["old-key"])
    assert ring.decrypt(sealed, context="t") == TOKEN
    assert TokenCipher.key_id(sealed) == old.current.kid != ring.current.kid
    assert TokenCipher.key_id(ring.encrypt(TOKEN, context="t")) == ring.current.kid


def test_unknown_key_is_an_error_not_a_fallback():
    sealed = TokenCipher("old-key").encrypt(TOKEN, context="t")
    with pytest.raises(CryptoError, match="no key"):
        TokenCipher("new-key").decrypt(sealed, context="t")


@pytest.mark.parametrize("garbage", ["", "EAAplaintext", "v2.abc.def", "v1.only"])
def test_non_ciphertext_is_refused(garbage):
    with pytest.raises(CryptoError):
        TokenCipher("k").decrypt(garbage, context="t")


def test_empty_key_is_refused():
    with pytest.raises(CryptoError):
        TokenCipher("")


def test_base64_keys_are_used_as_is_and_key_reprs_hide_material():
    raw = os.urandom(32)
    key = derive_key(base64.urlsafe_b64encode(raw).decode())
    assert key.material == raw
    assert raw.hex() not in repr(key) and "material" not in repr(key)
