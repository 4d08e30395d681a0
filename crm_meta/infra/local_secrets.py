"""Secrets outside production: generated randomly once into instance/ (mode 0600) and reused.

No secret is written in the code, so a development or demo install never accepts tokens signed
with a value anyone can read on GitHub. Production refuses to start without real ones instead.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

FILENAME = "local-secrets.json"
GENERATORS: dict[str, Callable[[], str]] = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(48),
    "JWT_SECRET_KEY": lambda: secrets.token_urlsafe(48),
    # 32 random bytes, urlsafe base64: TokenCipher uses them as the AES key as they are.
    "ENCRYPTION_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    # Meta app secrets are 32 hex digits; this one is the sandbox app's.
    "META_APP_SECRET": lambda: secrets.token_hex(16),
}


def missing_names(config) -> list[str]:
    """The generated secrets this configuration lacks (the app secret only for the sandbox)."""
    names = [name for name in ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEY")
             if not getattr(config, name)]
    if config.META_MODE == "sandbox" and not config.META_APP_SECRET:
        names.append("META_APP_SECRET")
    return names


def fill_missing(config, folder: Path, *, persist: bool = True) -> list[str]:
    """Set every missing secret on `config`: from `folder`'s file (created when needed), or
    fresh for this process only when `persist` is false (tests). Returns the names filled."""
    names = missing_names(config)
    if not names:
        return []
    values = load_or_create(folder, names) if persist else {n: GENERATORS[n]() for n in names}
    for name in names:
        setattr(config, name, values[name])
    return names


def load_or_create(folder: Path, names: list[str]) -> dict[str, str]:
    """The named secrets from `folder/local-secrets.json`, generating the ones it lacks; safe
    when several processes start at once (an exclusive lock, an atomic replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    lock_fd = os.open(folder / f".{FILENAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        missing = [name for name in names if not stored.get(name)]
        if missing:
            stored.update({name: GENERATORS[name]() for name in missing})
            temporary = folder / f".{FILENAME}.{os.getpid()}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stored, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(temporary, path)
        os.chmod(path, 0o600)  # readable by this user only, whoever created it
        return {name: stored[name] for name in names}
    finally:
        os.close(lock_fd)
