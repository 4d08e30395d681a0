"""Configuration: the contract's variables, and production refusing unsafe values."""

import subprocess
import sys
from pathlib import Path

import pytest

from config import (
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    config_from_env,
    normalise_database_url,
)
from tests.helpers.settings import GOOD_PRODUCTION

ROOT = Path(__file__).resolve().parents[2]


def test_development_defaults_follow_the_contract():
    config = DevelopmentConfig({})
    assert config.META_GRAPH_API_VERSION == "v26.0"  # issue 19: the newest Meta serves
    assert config.META_MODE == "sandbox"
    assert config.META_DIALOG_URL == "http://localhost:8000/sandbox/meta"
    assert config.META_GRAPH_URL == "http://localhost:8000/sandbox/meta"
    assert config.META_REDIRECT_URI == "http://localhost:8000/crm/auth/meta/callback"
    assert config.META_SCOPES == ["ads_management", "business_management",
                                  "whatsapp_business_management", "pages_show_list",
                                  "pages_read_engagement", "read_insights"]
    assert config.META_ADMIN_ROLES == ["admin", "ceo"]
    assert config.RATELIMIT_STORAGE_URI == "memory://"
    assert config.SQLALCHEMY_DATABASE_URI is None  # SQLite under instance/


def test_live_mode_points_at_meta():
    config = DevelopmentConfig({"META_MODE": "live"})
    assert config.META_DIALOG_URL == "https://www.facebook.com"
    assert config.META_GRAPH_URL == "https://graph.facebook.com"


def test_sandbox_base_follows_api_base_url():
    config = DevelopmentConfig({"API_BASE_URL": "http://crm.local:9000/"})
    assert config.META_GRAPH_URL == "http://crm.local:9000/sandbox/meta"


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
    ("postgresql://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_database_url_forms(url, expected):
    assert normalise_database_url(url) == expected


def test_postgres_dsn_is_an_alias_and_redis_feeds_rate_limits():
    config = DevelopmentConfig({"POSTGRES_DSN": "postgres://u@h/db", "REDIS_URL": "redis://r:6379/0"})
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql://u@h/db"
    assert config.RATELIMIT_STORAGE_URI == "redis://r:6379/0"


def test_production_accepts_real_values():
    config = config_from_env(GOOD_PRODUCTION)
    assert isinstance(config, ProductionConfig)
    config.validate()
    assert config.META_MODE == "live"
    assert config.SESSION_COOKIE_SECURE is True


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEY", "META_APP_ID",
                                  "META_APP_SECRET", "META_REDIRECT_URI"])
def test_production_refuses_missing_secret(name):
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        config_from_env(env).validate()


def test_production_refuses_development_values():
    env = {**GOOD_PRODUCTION, "SECRET_KEY": "dev-insecure-secret-key"}
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        config_from_env(env).validate()


# The review's reproduction: production started with one-character secrets.
@pytest.mark.parametrize("name, value", [
    ("SECRET_KEY", "x"), ("JWT_SECRET_KEY", "x"), ("ENCRYPTION_KEY", "x"),
    ("SECRET_KEY", "s" * 31), ("JWT_SECRET_KEY", "ñ" * 15),  # 30 bytes in 15 characters
    ("ENCRYPTION_KEY", "e" * 40),  # not 32 bytes of urlsafe base64
    ("ENCRYPTION_KEY", "ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZQ=="),  # 31 bytes
    ("ENCRYPTION_KEY", "ZWVl ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWU="),
    ("META_REDIRECT_URI", "http://crm.example.com/crm/auth/meta/callback"),
    ("META_REDIRECT_URI", "crm.example.com/crm/auth/meta/callback"),
])
def test_production_refuses_weak_secrets_and_a_plain_http_redirect(name, value):
    with pytest.raises(ConfigError, match=name) as raised:
        config_from_env({**GOOD_PRODUCTION, name: value}).validate()
    message = str(raised.value)
    assert "\n" not in message and value not in message  # one line, never the value itself


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_accepts_32_bytes(name):
    config_from_env({**GOOD_PRODUCTION, name: "k" * 32}).validate()


def test_production_accepts_an_unpadded_key():
    config_from_env({**GOOD_PRODUCTION,
                     "ENCRYPTION_KEY": GOOD_PRODUCTION["ENCRYPTION_KEY"].rstrip("=")}).validate()


def test_the_served_app_exits_on_a_weak_jwt_secret(tmp_path):
    env = {**GOOD_PRODUCTION, "JWT_SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "JWT_SECRET_KEY" in lines[0]


def test_production_refuses_sandbox_mode():
    with pytest.raises(ConfigError, match="META_MODE=sandbox"):
        config_from_env({**GOOD_PRODUCTION, "META_MODE": "sandbox"}).validate()


def test_unknown_app_env_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        config_from_env({"APP_ENV": "staging"})


def test_wsgi_exits_with_one_line_naming_the_variable(tmp_path):
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != "JWT_SECRET_KEY"}
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET_KEY" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_webhook_needs_its_own_secret_never_the_session_key():
    config = DevelopmentConfig({"NOTIFY_WEBHOOK_URL": "https://hooks.example/meta",
                                "SECRET_KEY": "s" * 40})
    assert config.NOTIFY_WEBHOOK_SECRET == ""
    with pytest.raises(ConfigError, match="NOTIFY_WEBHOOK_SECRET"):
        config.validate()
    DevelopmentConfig({"NOTIFY_WEBHOOK_URL": "https://hooks.example/meta",
                       "NOTIFY_WEBHOOK_SECRET": "w" * 32}).validate()
