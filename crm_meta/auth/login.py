"""Checking a login: the same work whether or not the e-mail belongs to someone."""

from __future__ import annotations

import secrets
from functools import lru_cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm_meta.infra.database import db
from crm_meta.models import User


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """A hash of a random password with the configured method: checked for unknown e-mails so
    that they take as long as known ones (no user enumeration by timing)."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def authenticate(email: str, password: str) -> tuple[User | None, bool]:
    """The user with this e-mail (or None) and whether the password is theirs."""
    user = db.session.scalar(db.select(User).filter_by(email=email))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")),
                            password)
        return None, False
    return user, user.check_password(password)
