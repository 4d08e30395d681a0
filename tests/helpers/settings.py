"""The test app's configuration: its constants, `testing_config`, and the files it needs."""

from __future__ import annotations

import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from config import TestingConfig

ROOT = Path(__file__).resolve().parents[2]

APP_ID = "100000000000777"
APP_SECRET = "test-app-secret-0123456789abcdef"
REDIRECT_URI = "http://localhost/crm/auth/meta/callback"
JWT_SECRET = "test-jwt-secret-with-enough-length-0123"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# A production environment that passes validation; tests take one thing away at a time.
GOOD_PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "JWT_SECRET_KEY": "j" * 40,
    "ENCRYPTION_KEY": "ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWU=",  # 32 bytes, urlsafe base64
    "META_APP_ID": "123456789",
    "META_APP_SECRET": "a" * 32,
    "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback",
}

# `flask crypto rotate`: a token stored under key A, read back under key B.
KEY_A = "rotation-key-A-0123456789"
KEY_B = "rotation-key-B-0123456789"
PLAINTEXT = "EAAplaintext-token-for-rotation-0123456789"


def testing_config(sandbox_url: str, database_url: str, **overrides) -> TestingConfig:
    settings = dict(
        SQLALCHEMY_DATABASE_URI=database_url,
        META_APP_ID=APP_ID,
        META_APP_SECRET=APP_SECRET,
        META_REDIRECT_URI=REDIRECT_URI,
        META_MODE="sandbox",
        META_DIALOG_URL=sandbox_url,
        META_GRAPH_URL=sandbox_url,
        JWT_SECRET_KEY=JWT_SECRET,
        ENCRYPTION_KEY="test-encryption-key-current",
        SECRET_KEY="test-secret-key",
        RATELIMIT_ENABLED=False,
        META_HTTP_RETRIES=2,
    )
    settings.update(overrides)
    return TestingConfig(**settings)


testing_config.__test__ = False  # a helper, not a test, wherever it is imported


def compile_catalogues() -> None:
    """`pybabel compile`, in-process, when a .mo is missing or older than its .po."""
    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as target:
            write_mo(target, catalog)
