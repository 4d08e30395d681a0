"""config.py is the only home of defaults: the typed settings read every key strictly, and no
module of crm_meta reads a configuration key with a default of its own."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from crm_meta.meta.keepalive.verdicts import Settings as KeepaliveSettings
from crm_meta.meta.settings import GovernorSettings, MetaSettings
from crm_meta.meta.webhooks.forward import ForwardSettings
from crm_meta.notify import RetryPolicy
from crm_meta.runtime import of
from tests.tools.configs import config_values

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (MetaSettings, GovernorSettings, KeepaliveSettings, RetryPolicy, ForwardSettings)
KEYS = frozenset(config_values())


@pytest.mark.parametrize("kind", SETTINGS, ids=lambda kind: kind.__name__)
def test_settings_have_no_default_of_their_own(kind):
    """A key missing from the configuration is an error, not a second default."""
    with pytest.raises(KeyError):
        kind.from_config({})
    one_short = config_values()
    needed = [key for key in sorted(one_short) if _reads(kind, key)]
    assert needed, f"{kind.__name__} reads no key of config.py"
    del one_short[needed[0]]
    with pytest.raises(KeyError):
        kind.from_config(one_short)


def _reads(kind, key: str) -> bool:
    values = config_values()
    del values[key]
    try:
        kind.from_config(values)
    except KeyError:
        return True
    return False


def test_settings_take_config_py_values():
    values = config_values(KEEPALIVE_INTERVAL_HOURS="2", KEEPALIVE_TICK_MINUTES="200",
                           NOTIFY_MAX_ATTEMPTS="3", META_GOVERNOR_THRESHOLD="80")
    keepalive = KeepaliveSettings.from_config(values)
    assert keepalive.interval == timedelta(hours=2) and keepalive.wake_every == timedelta(hours=2)
    assert keepalive.lease == timedelta(seconds=300) and keepalive.concurrency == 8
    assert RetryPolicy.from_config(values).max_attempts == 3
    assert RetryPolicy.from_config(values).keep == timedelta(days=7)
    assert MetaSettings.from_config(values).governor.threshold == 80.0
    assert MetaSettings.from_config(values).http_retries == 3


def test_the_runtime_builds_them_once_from_the_apps_config(make_app):
    app = make_app(KEEPALIVE_CONCURRENCY=3, META_HTTP_RETRIES=5)
    parts = of(app)
    assert parts.keepalive.concurrency == 3 and parts.meta.http_retries == 5
    assert parts.graph.max_retries == 5 and parts.notifier.policy == RetryPolicy.from_config(app.config)


def _defaults_outside_config(tree: ast.AST) -> list[int]:
    """Lines that read a config.py key with a fallback: `x.get("KEY", default)`,
    `getattr(x, "KEY", default)`, or `x.get("KEY") or <truthy literal>` (`config["KEY"] or ...`
    gives an empty value a meaning, e.g. API_BASE_URL: derived from the request)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            func, args = node.func, node.args
            getter = isinstance(func, ast.Attribute) and func.attr == "get" and _key(args[0])
            fallback = isinstance(func, ast.Name) and func.id == "getattr" and len(args) == 3
            if getter or fallback and _key(args[1]):
                found.append(node.lineno)
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            first, rest = node.values[0], node.values[1:]
            if _key_read(first) and any(isinstance(v, ast.Constant) and v.value for v in rest):
                found.append(node.lineno)
    return found


def _key(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in KEYS


def _key_read(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and _key(node.args[0])
    return False


def test_no_module_of_crm_meta_has_a_default_of_its_own():
    offenders = []
    for path in sorted((ROOT / "crm_meta").rglob("*.py")):
        lines = _defaults_outside_config(ast.parse(path.read_text(), str(path)))
        offenders += [f"{path.relative_to(ROOT)}:{line}" for line in lines]
    assert offenders == [], "read these keys with config[KEY]: config.py holds the defaults"


def test_the_scan_finds_a_default():
    source = 'a = config.get("KEEPALIVE_CONCURRENCY", 8)\nb = getattr(c, "SMTP_PORT", 25)\n' \
             'c = config.get("SMTP_FROM") or "me@localhost"\nd = config["API_BASE_URL"] or "http://x"\n' \
             'e = environ.get("HTTP_HOST", "")\nf = config.get("SMTP_HOST") or ""\n'
    assert _defaults_outside_config(ast.parse(source)) == [1, 2, 3]
