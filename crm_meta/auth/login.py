"""Checking a login: the same work whether or not the e-mail belongs to someone."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm_meta.infra.database import db
from crm_meta.models import User

# What an address looks like: one @, a dot in the domain, no spaces. Anything else typed into
# the e-mail field (a password, often) is never written down as it was typed.
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}")


def failed_login_actor(value: str, key: str) -> str:
    """Who a failed login names in the audit trail and the logs: the e-mail when the value is
    one, else a keyed hash of it (the same value gives the same hash; the text never appears)."""
    if EMAIL.fullmatch(value):
        return f"email:{value}"
    digest = hmac.new(key.encode(), b"login-identity:" + value.encode(), hashlib.sha256)
    return f"typed-sha256:{digest.hexdigest()[:16]}"


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """A hash of a random password with the configured method: checked for unknown e-mails so
    that they take as long as known ones (no user enumeration by timing)."""
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def authenticate(email: str, password: str) -> tuple[User | None, bool]:
    """The user with this e-mail (or None) and whether the password is theirs."""
    user = db.session.scalar(db.select(User).filter_by(email=email))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]),
                            password)
        return None, False
    return user, user.check_password(password)


def remember_locale(user: User, code: str) -> None:
    """The user's interface language, kept for their next session."""
    user.locale = code
    db.session.commit()
