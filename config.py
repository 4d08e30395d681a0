"""Configuration objects built from the environment; no I/O beyond reading variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import config_checks
from config_webhooks import webhook_problem, webhook_settings
from crm_meta.meta.exposure import DEFAULT_ALLOWED

# Values of this shape came from older development defaults; production still refuses them.
DEV_SECRET_PREFIX = "dev-insecure-"
DEFAULT_SCOPES = (
    "ads_management,business_management,whatsapp_business_management,"
    "pages_show_list,pages_read_engagement,read_insights"
)
DEFAULT_REDIRECT_URI = "http://localhost:8000/crm/auth/meta/callback"
# What the services' Graph proxy forwards, typed (crm_meta.meta.exposure): `kind` (the node) or
# `kind/edge`, optionally `:GET|POST` to narrow the methods Meta allows there. The default is what a
# CRM's marketing and lead services read and write: businesses' owned/client ad accounts; an ad
# account's campaigns, ad sets, ads and insights (sync, and async report runs); campaign, ad set,
# ad and creative nodes (with field expansion) and their insights; pages' lead forms, forms'
# leads, leads; WhatsApp accounts, their numbers and templates. Nothing that returns a token.
DEFAULT_PROXY_PATHS = ",".join(DEFAULT_ALLOWED)
# The sandbox's registered app outside production: obviously not a real Meta app (its secret,
# like every other one, is generated into instance/ by crm_meta.infra.local_secrets).
SANDBOX_APP_ID = "100000000000001"

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEY", "META_APP_ID",
                          "META_APP_SECRET", "META_REDIRECT_URI")




def in_app_sandbox_url(api_base_url: str) -> str:
    """Where this app serves its own sandbox (META_MODE=sandbox): the default Meta base URL."""
    return (api_base_url or "http://localhost:8000") + "/sandbox/meta"


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names it in one line."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def normalise_database_url(url: str) -> str:
    """Accept the seed's `postgres://` spelling; plain `postgresql://` uses psycopg2."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    return url


class Config:
    """Settings shared by every environment; each attribute reads one variable."""

    APP_ENV = "development"
    TESTING = False
    # Where generated secrets and the embedded SQLite file live; None: instance/ in the checkout.
    INSTANCE_PATH: str | None = None

    def __init__(self, env: Mapping[str, str] | None = None, **overrides):
        env = dict(os.environ if env is None else env)
        get = env.get
        # Database: DATABASE_URL, or the seed's POSTGRES_DSN; None means SQLite under instance/.
        url = get("DATABASE_URL") or get("POSTGRES_DSN")
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(url) if url else None
        # Seconds after which a pooled database connection is replaced rather than reused, so
        # stale ones (server restarts, idle timeouts of proxies in between) age out; a request
        # whose pooled connection died anyway retries its first statement once (crm_meta.infra.dbreads).
        self.DATABASE_POOL_RECYCLE = float(get("DATABASE_POOL_RECYCLE") or 1800)
        # Test every pooled connection with a `SELECT 1` before use: one more round trip per
        # request; only for networks that silently drop idle connections faster than the recycle.
        self.DATABASE_POOL_PRE_PING = _bool(get("DATABASE_POOL_PRE_PING"), False)
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": self.DATABASE_POOL_PRE_PING,
                                          "pool_recycle": self.DATABASE_POOL_RECYCLE}
        # Seconds a process keeps a tenant's status read (PostgreSQL only; kept true across
        # processes by LISTEN/NOTIFY, this only bounds a lost notification); 0 turns it off.
        self.STATUS_CACHE_SECONDS = float(get("STATUS_CACHE_SECONDS") or 60)
        # Secrets: never a default in code. Outside production missing ones are generated into
        # instance/ at start (crm_meta.infra.local_secrets); production refuses to start without them.
        self.SECRET_KEY = get("SECRET_KEY") or ""
        self.JWT_SECRET_KEY = get("JWT_SECRET_KEY") or ""
        self.ENCRYPTION_KEY = get("ENCRYPTION_KEY") or ""
        # Older keys, decrypt-only, so rotation never strands a stored token.
        self.ENCRYPTION_KEYS_PREVIOUS = _list(get("ENCRYPTION_KEYS_PREVIOUS"))
        # The Meta app and the one Graph version that drives dialog and API alike.
        self.META_APP_ID = get("META_APP_ID") or SANDBOX_APP_ID
        self.META_APP_SECRET = get("META_APP_SECRET") or ""  # generated for the sandbox when empty
        self.META_REDIRECT_URI = get("META_REDIRECT_URI") or DEFAULT_REDIRECT_URI
        self.META_GRAPH_API_VERSION = get("META_GRAPH_API_VERSION") or "v26.0"  # newest: meta/versions.py
        self.META_SCOPES = _list(get("META_SCOPES") or DEFAULT_SCOPES)
        # Facebook Login for Business configuration; replaces `scope` when set.
        self.META_LOGIN_CONFIG_ID = get("META_LOGIN_CONFIG_ID") or ""
        self.META_VERIFY_TOKEN = get("META_VERIFY_TOKEN") or ""
        self.__dict__.update(webhook_settings(get, self.APP_ENV, self.META_VERIFY_TOKEN))  # Meta's webhooks
        # `sandbox` runs the built-in emulator; production refuses it.
        self.META_MODE = (get("META_MODE") or self.default_meta_mode()).lower()
        # Public base URL of this service; empty means "derive it from the request".
        self.API_BASE_URL = (get("API_BASE_URL") or "").rstrip("/")
        sandbox_base = in_app_sandbox_url(self.API_BASE_URL)
        default_meta = sandbox_base if self.META_MODE == "sandbox" else None
        self.META_DIALOG_URL = (get("META_DIALOG_URL") or default_meta or "https://www.facebook.com").rstrip("/")
        self.META_GRAPH_URL = (get("META_GRAPH_URL") or default_meta or "https://graph.facebook.com").rstrip("/")
        # Graph client manners: seconds per call, retries for transient errors only.
        self.META_HTTP_TIMEOUT = float(get("META_HTTP_TIMEOUT") or 10)
        self.META_HTTP_RETRIES = int(get("META_HTTP_RETRIES") or 3)
        # When set, the sandbox's /_sandbox/* control API needs it (header X-Sandbox-Control-Token)
        # from every caller; when empty it answers loopback clients only.
        self.SANDBOX_CONTROL_TOKEN = get("SANDBOX_CONTROL_TOKEN") or ""
        # How long a cached sandbox clock offset is trusted (seconds); tests use 0.
        self.SANDBOX_CLOCK_TTL = float(get("SANDBOX_CLOCK_TTL") or 1.0)
        # When set, browser callbacks end in the CRM's own frontend instead of the wizard.
        self.FRONTEND_URL = (get("FRONTEND_URL") or "").rstrip("/")
        self.REDIS_URL = get("REDIS_URL") or ""
        # JWT roles of tenant admins (CRM Ventas' owner is `ceo`).
        self.META_ADMIN_ROLES = _list(get("META_ADMIN_ROLES") or "admin,ceo")
        # JWT roles that may read; a role in neither list is refused, as CRM Ventas does.
        self.META_MEMBER_ROLES = _list(get("META_MEMBER_ROLES")
                                       or "member,professional,secretary,setter,closer")
        # Claims tried in order for the caller's subject (CRM Ventas' login has `user_id`).
        self.JWT_SUBJECT_CLAIMS = _list(get("JWT_SUBJECT_CLAIMS") or "sub,user_id")
        # When set, a CRM token's `aud` (resp. `iss`) claim must be present and equal it; unset,
        # neither is required (CRM Ventas' login token has neither; one with `aud` is refused).
        self.JWT_AUDIENCE = get("JWT_AUDIENCE") or ""
        self.JWT_ISSUER = get("JWT_ISSUER") or ""
        # Cookie that may carry the CRM's JWT when no Authorization header is sent.
        self.JWT_COOKIE_NAME = get("JWT_COOKIE_NAME") or "access_token"
        # When set, every API call must carry it as X-Admin-Token (CRM Ventas' ADMIN_TOKEN).
        self.CRM_ADMIN_TOKEN = get("CRM_ADMIN_TOKEN") or ""
        # Exact origins of the CRM's frontend, allowed by CORS with credentials.
        self.CRM_ORIGINS = [origin.rstrip("/") for origin in _list(get("CRM_ORIGINS"))]
        # Rate limits (Flask-Limiter strings); counters in Redis when REDIS_URL is set.
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        # Redis unreachable: count in this process (a warning and a metric say so) rather than fail.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # Seconds before an unreachable Redis counts as down, so a request never hangs on it.
        self.REDIS_TIMEOUT = float(get("REDIS_TIMEOUT") or 1.0)
        self.RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": self.REDIS_TIMEOUT,
                                          "socket_timeout": self.REDIS_TIMEOUT}
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_ENABLED = _bool(get("RATELIMIT_ENABLED"), True)
        self.RATELIMIT_KEY_PREFIX = "crm-meta"
        self.RATELIMIT_LOGIN = get("RATELIMIT_LOGIN") or "10/minute"
        self.RATELIMIT_META_URL = get("RATELIMIT_META_URL") or "20/minute"
        self.RATELIMIT_META_DISCONNECT = get("RATELIMIT_META_DISCONNECT") or "10/minute"
        self.RATELIMIT_META_TEST = get("RATELIMIT_META_TEST") or "5/minute"
        self.RATELIMIT_META_CALLBACK = get("RATELIMIT_META_CALLBACK") or "30/minute"
        self.RATELIMIT_META_CALLBACKS = get("RATELIMIT_META_CALLBACKS") or "60/minute"
        # The drop-in Graph endpoint (/graph/...): calls per service and tenant.
        self.RATELIMIT_GRAPH_GATEWAY = get("RATELIMIT_GRAPH_GATEWAY") or "600/minute"
        # The services' Graph proxy (/internal/...): kinds and edges it forwards (see DEFAULT_PROXY_PATHS).
        self.META_PROXY_ALLOWED_PATHS = _list(get("META_PROXY_ALLOWED_PATHS") or DEFAULT_PROXY_PATHS)
        # Rate governor: hold calls back while Meta reports the app, a business or an ad account
        # at or over this percent of its budget (shared through REDIS_URL).
        self.META_GOVERNOR_THRESHOLD = float(get("META_GOVERNOR_THRESHOLD") or 90)
        # Seconds a scope over the threshold is held when Meta names no time to wait.
        self.META_GOVERNOR_HOLD_SECONDS = float(get("META_GOVERNOR_HOLD_SECONDS") or 60)
        # Prefix of the governor's Redis keys, so deployments can share one Redis.
        self.META_GOVERNOR_KEY_PREFIX = get("META_GOVERNOR_KEY_PREFIX") or "crm-meta:governor"
        # Keep-alive sweep: the scheduler runs only where asked (the served app, not tests/CLI).
        self.SCHEDULER_ENABLED = _bool(get("SCHEDULER_ENABLED"), False)
        self.KEEPALIVE_INTERVAL_HOURS = float(get("KEEPALIVE_INTERVAL_HOURS") or 6)
        self.KEEPALIVE_CONCURRENCY = int(get("KEEPALIVE_CONCURRENCY") or 8)
        # How often the scheduler wakes to look for due connections (minutes).
        self.KEEPALIVE_TICK_MINUTES = float(get("KEEPALIVE_TICK_MINUTES") or 15)
        # Seconds a claim on a connection lasts; a killed process's claims lapse after it.
        self.KEEPALIVE_CLAIM_SECONDS = float(get("KEEPALIVE_CLAIM_SECONDS") or 300)
        # Where keep-alive notices are POSTed, and the HMAC key the receiver verifies them with:
        # a secret of its own, shared with the receiver (never SECRET_KEY, which signs sessions).
        self.NOTIFY_WEBHOOK_URL = get("NOTIFY_WEBHOOK_URL") or ""
        self.NOTIFY_WEBHOOK_SECRET = get("NOTIFY_WEBHOOK_SECRET") or ""
        self.SMTP_HOST = get("SMTP_HOST") or ""
        self.SMTP_PORT = int(get("SMTP_PORT") or 587)
        self.SMTP_USER = get("SMTP_USER") or ""
        self.SMTP_PASSWORD = get("SMTP_PASSWORD") or ""
        self.SMTP_FROM = get("SMTP_FROM") or "crm-meta@localhost"
        # `1` lets a message without a login go in clear to a server offering no STARTTLS (a
        # relay on localhost); otherwise nothing is ever sent without TLS.
        self.SMTP_ALLOW_PLAINTEXT = _bool(get("SMTP_ALLOW_PLAINTEXT"), False)
        # Outbox delivery attempts per notice before it is given up (kept, audited).
        self.NOTIFY_MAX_ATTEMPTS = int(get("NOTIFY_MAX_ATTEMPTS") or 12)
        # Seconds before the first retry of a failed notice; doubles per attempt.
        self.NOTIFY_RETRY_BASE_SECONDS = float(get("NOTIFY_RETRY_BASE_SECONDS") or 60)
        # The longest wait between two attempts (seconds).
        self.NOTIFY_RETRY_MAX_SECONDS = float(get("NOTIFY_RETRY_MAX_SECONDS") or 6 * 3600)
        # Seconds a sender holds a notice; a killed sender's notices are due again after it.
        self.NOTIFY_CLAIM_SECONDS = float(get("NOTIFY_CLAIM_SECONDS") or 300)
        # Days delivered notices stay in the outbox before the outbox job deletes them.
        self.NOTIFY_OUTBOX_KEEP_DAYS = float(get("NOTIFY_OUTBOX_KEEP_DAYS") or 7)
        # Largest request body accepted (bytes); larger ones get 413 before anything parses them.
        self.MAX_CONTENT_LENGTH = int(get("MAX_CONTENT_LENGTH") or 1024 * 1024)
        # Cookies: Secure when the public URL is https (always in production).
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.API_BASE_URL.startswith("https://")
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.WTF_CSRF_ENABLED = True  # Flask-WTF's own default, written here (tests turn it off)
        self.LANGUAGES = ["en", "es"]
        self.BABEL_DEFAULT_LOCALE = "en"
        self.LOG_LEVEL = get("LOG_LEVEL") or "INFO"
        # `text` or `json` (one object per line with the request id); the image sets json.
        self.LOG_FORMAT = (get("LOG_FORMAT") or "text").strip().lower()
        # When set, /metrics needs `Authorization: Bearer <it>`. Unset: callers whose socket peer
        # is loopback (never judged by X-Forwarded-For) with no forwarding header; production
        # refuses every scrape without the token unless METRICS_ALLOW_LOOPBACK=1 says otherwise.
        self.METRICS_TOKEN = get("METRICS_TOKEN") or ""
        # Serve /metrics without METRICS_TOKEN to same-host, unproxied callers (default: yes
        # outside production, no in production; an explicit opt-out there).
        self.METRICS_ALLOW_LOOPBACK = _bool(get("METRICS_ALLOW_LOOPBACK"), self.APP_ENV != "production")
        # Werkzeug's scrypt with its default cost for stored passwords.
        self.PASSWORD_HASH_METHOD = "scrypt"
        # Where `make run` and gunicorn listen; read by gunicorn.conf.py (the image sets 0.0.0.0).
        self.HOST = get("HOST") or "127.0.0.1"
        self.PORT = int(get("PORT") or 8000)
        # Strict-Transport-Security sent on every response; production only (https there).
        self.HSTS = ""
        # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
        self.TRUSTED_PROXIES = int(get("TRUSTED_PROXIES") or 0)
        for key, value in overrides.items():
            setattr(self, key, value)

    def default_meta_mode(self) -> str:
        return "sandbox"

    def validate(self) -> None:
        """Raise ConfigError naming the first unsafe setting (config_checks holds the rules)."""
        problem = config_checks.general_problem(self) or webhook_problem(self)
        if problem:
            raise ConfigError(problem)


class DevelopmentConfig(Config):
    APP_ENV = "development"


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True

    def __init__(self, env: Mapping[str, str] | None = None, **overrides):
        super().__init__(env if env is not None else {}, **overrides)
        self.WTF_CSRF_ENABLED = overrides.get("WTF_CSRF_ENABLED", False)
        self.SANDBOX_CLOCK_TTL = overrides.get("SANDBOX_CLOCK_TTL", 0.0)
        # Still scrypt, with parameters cheap enough for hundreds of test logins.
        self.PASSWORD_HASH_METHOD = overrides.get("PASSWORD_HASH_METHOD", "scrypt:1024:8:1")
        self.META_HTTP_TIMEOUT = overrides.get("META_HTTP_TIMEOUT", 5.0)
        if "META_GRAPH_API_VERSION" not in overrides and not (env or {}).get("META_GRAPH_API_VERSION"):
            self.META_GRAPH_API_VERSION = "v25.0"  # the tests' Meta paths name it (the default is newer)
        # No listener thread and connection per test app unless a test asks for the cache.
        self.STATUS_CACHE_SECONDS = overrides.get("STATUS_CACHE_SECONDS", 0.0)


class ProductionConfig(Config):
    APP_ENV = "production"

    def default_meta_mode(self) -> str:
        return "live"

    def __init__(self, env: Mapping[str, str] | None = None, **overrides):
        super().__init__(env, **overrides)
        self._raw = dict(os.environ if env is None else env)
        self.SESSION_COOKIE_SECURE = True
        # Browsers keep to https for a year once they have seen the service over https.
        self.HSTS = "max-age=31536000"

    def validate(self) -> None:
        super().validate()
        for name in REQUIRED_IN_PRODUCTION:
            value = self._raw.get(name, "")
            if not value or value.startswith(DEV_SECRET_PREFIX) or value == DEFAULT_REDIRECT_URI:
                raise ConfigError(f"{name} must be set to a production value when APP_ENV=production")
        problem = config_checks.production_problem(self._raw)
        if problem:
            raise ConfigError(problem)
        if self.META_MODE == "sandbox":
            raise ConfigError("META_MODE=sandbox is refused when APP_ENV=production")


CONFIGS = {"development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig}


def config_from_env(env: Mapping[str, str] | None = None) -> Config:
    """Pick the config class named by APP_ENV and build it from the environment."""
    env = os.environ if env is None else env
    name = (env.get("APP_ENV") or "development").lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name](env)
