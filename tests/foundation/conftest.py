"""Fixtures of the foundation tests, on top of tests/conftest.py."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def build_app(make_app):
    """Build an app on a given database without touching its schema (as a second process would)."""
    return lambda database_url, **overrides: make_app(database_url, schema=False, **overrides)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def keep_logging():
    """Alembic's env.py runs logging.fileConfig, which disables existing loggers; undo it."""
    manager = logging.root.manager
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (logger.disabled, logger.level, list(logger.handlers), logger.propagate)
        for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if name in saved:
            logger.disabled, level, handlers, logger.propagate = saved[name]
            logger.setLevel(level)
            logger.handlers[:] = handlers
        else:
            logger.disabled = False
