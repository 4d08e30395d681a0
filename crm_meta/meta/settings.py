"""The Meta app's settings, typed and frozen, built once by the runtime from the app's configuration.

config.py is the only home of defaults: `from_config` reads every key with `config[KEY]`, so a
missing key is a KeyError here, never a second default (tests/core/test_settings.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GovernorSettings:
    """The rate governor: when a Meta budget counts as used up, and where the holds are shared."""

    threshold: float  # percent of a budget at which calls are held back
    hold_seconds: float  # how long a scope is held when Meta names no time
    key_prefix: str  # of the Redis keys, so deployments can share one Redis
    redis_url: str  # empty: this process's memory

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GovernorSettings:
        return cls(threshold=float(config["META_GOVERNOR_THRESHOLD"]),
                   hold_seconds=float(config["META_GOVERNOR_HOLD_SECONDS"]),
                   key_prefix=str(config["META_GOVERNOR_KEY_PREFIX"]), redis_url=str(config["REDIS_URL"]))


@dataclass(frozen=True)
class MetaSettings:
    """The Meta app, its one Graph version, how its Graph client behaves, what it asks for."""

    app_id: str
    app_secret: str
    graph_url: str  # Graph's base URL (the sandbox's in sandbox mode)
    dialog_url: str  # the login dialog's base URL
    version: str  # one version for dialog and Graph
    http_timeout: float  # seconds per Graph call
    http_retries: int  # retries of transient errors only
    redirect_uri: str  # the exact callback registered with Meta
    scopes: tuple[str, ...]  # the permissions asked for (and required)
    login_config_id: str  # a Facebook Login for Business configuration; replaces scopes when set
    proxy_allowed_paths: tuple[str, ...]  # what the services' Graph proxy forwards
    governor: GovernorSettings

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MetaSettings:
        return cls(
            app_id=str(config["META_APP_ID"]),
            app_secret=str(config["META_APP_SECRET"]),
            graph_url=str(config["META_GRAPH_URL"]).rstrip("/"),
            dialog_url=str(config["META_DIALOG_URL"]).rstrip("/"),
            version=str(config["META_GRAPH_API_VERSION"]),
            http_timeout=float(config["META_HTTP_TIMEOUT"]),
            http_retries=int(config["META_HTTP_RETRIES"]),
            redirect_uri=str(config["META_REDIRECT_URI"]),
            scopes=tuple(config["META_SCOPES"]),
            login_config_id=str(config["META_LOGIN_CONFIG_ID"]),
            proxy_allowed_paths=tuple(config["META_PROXY_ALLOWED_PATHS"]),
            governor=GovernorSettings.from_config(config),
        )
