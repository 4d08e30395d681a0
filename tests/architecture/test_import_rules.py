"""The architecture's import rules, checked on every `make test`: the import-linter contracts in
pyproject.toml (the domain knows no HTTP, the sandbox imports nothing of the product, no
cycles), and the domain imported for real with Flask's request machinery out of reach."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_hold():
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# Run in a fresh interpreter: packages that serve requests (forms, sessions, translations,
# rate limits, CORS, Authlib's Flask client) and our HTTP layers cannot be imported at all.
BLOCKED = ("flask_wtf", "wtforms", "flask_babel", "flask_login", "flask_limiter", "flask_cors",
           "authlib.integrations.flask_client", "crm_meta.errors", "crm_meta.api", "crm_meta.web",
           "crm_meta.auth", "crm_meta.internal", "crm_meta.callbacks", "crm_meta.flow",
           "crm_meta.negotiation", "crm_meta.runtime", "crm_meta.cli", "crm_meta.ops")
PROBE = """
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{{name}} is off limits for the domain")
        return None

sys.meta_path.insert(0, Block())
import flask
import crm_meta.meta as domain

names = sorted(m.name for m in pkgutil.iter_modules(domain.__path__, "crm_meta.meta."))
proxies = {{id(flask.request), id(flask.session), id(flask.g)}}
holding = []
for name in names:
    module = importlib.import_module(name)
    holding += [f"{{name}}.{{k}}" for k, v in vars(module).items() if id(v) in proxies]
print(json.dumps({{"modules": names, "holding": holding}}))
"""


def test_every_domain_module_imports_without_flask_request_machinery():
    result = subprocess.run([sys.executable, "-c", PROBE.format(blocked=BLOCKED)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) >= 15  # every module of crm_meta/meta was imported
    assert report["holding"] == []  # none holds flask's request, session or g


def test_the_probe_can_fail():
    """The blocker really blocks: a module of the HTTP side is refused."""
    probe = PROBE.replace("import crm_meta.meta as domain",
                          "import crm_meta.errors\nimport crm_meta.meta as domain")
    result = subprocess.run([sys.executable, "-c", probe.format(blocked=BLOCKED)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "off limits for the domain" in result.stderr
