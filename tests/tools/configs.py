"""Settings for unit tests, built from config.py's defaults (the only place that has them)."""

from __future__ import annotations

import dataclasses
from typing import Any

from config import TestingConfig
from crm_meta.meta.settings import MetaSettings


def config_values(**overrides: Any) -> dict[str, Any]:
    """What `app.config` holds for the testing configuration with `overrides`, without an app."""
    config = TestingConfig(**overrides)
    return {name: getattr(config, name) for name in dir(config) if name.isupper()}


def meta_settings(*, base_url: str, version: str, app_id: str, app_secret: str,
                  **changes: Any) -> MetaSettings:
    """The Meta settings of a Graph client for `base_url`, the rest from config.py's defaults."""
    return dataclasses.replace(MetaSettings.from_config(config_values()), graph_url=base_url,
                               version=version, app_id=app_id, app_secret=app_secret, **changes)
