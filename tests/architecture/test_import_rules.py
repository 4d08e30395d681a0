"""The architecture's import rules, checked on every `make test`: the import-linter contracts in
pyproject.toml (the layers, independent front ends, the sandbox imports nothing of the product, no
cycles), and the domain imported for real with everything above its layer out of reach: the
blocked list is read from the contracts, so the rule has one source."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_hold():
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


CONTRACTS = {contract["id"]: contract for contract in
             tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
             ["tool"]["importlinter"]["contracts"]}


def layer_modules(layer: str) -> list[str]:
    """`"api : web"` -> ["crm_meta.api", "crm_meta.web"] (the layers contract's container is crm_meta)."""
    return [f"crm_meta.{tail.strip()}" for tail in layer.replace("|", ":").split(":")]


def above_the_domain() -> list[str]:
    layers = CONTRACTS["layers"]["layers"]
    return [module for layer in layers[:layers.index("meta")] for module in layer_modules(layer)]


# Run in a fresh interpreter: every layer above the domain and the libraries that serve requests
# (forms, sessions, translations, rate limits, CORS) cannot be imported at all. Authlib's Flask
# client is added here: import-linter sees external packages only by their top-level name, and
# the domain does use Authlib itself (its OAuth2 client, without Flask).
BLOCKED = (*above_the_domain(), *CONTRACTS["domain-libraries"]["forbidden_modules"],
           "authlib.integrations.flask_client")

PROBE = """
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{{name}} is off limits for the domain")
        return None

import flask  # Flask itself (and what it imports, click among them) is not the domain's to block
sys.meta_path.insert(0, Block())
import crm_meta.meta as domain

names = sorted(m.name for m in pkgutil.walk_packages(domain.__path__, "crm_meta.meta."))
proxies = {{id(flask.request), id(flask.session), id(flask.g)}}
holding = []
for name in names:
    module = importlib.import_module(name)
    holding += [f"{{name}}.{{k}}" for k, v in vars(module).items() if id(v) in proxies]
print(json.dumps({{"modules": names, "holding": holding}}))
"""


def test_the_blocked_list_comes_from_the_layers():
    assert {"crm_meta.http", "crm_meta.connect", "crm_meta.auth", "crm_meta.api", "crm_meta.ops",
            "crm_meta.runtime", "crm_meta.jobs", "crm_meta.app", "flask_wtf"} <= set(BLOCKED)
    assert not {"crm_meta.meta", "crm_meta.notify", "crm_meta.models", "crm_meta.infra"} & set(BLOCKED)


def test_the_front_end_layer_is_the_independent_front_ends():
    """A front end is named in both contracts; a package added to one only fails here."""
    front_layer = next(layer for layer in CONTRACTS["layers"]["layers"]
                       if "crm_meta.api" in layer_modules(layer))
    assert set(layer_modules(front_layer)) == set(CONTRACTS["front-ends"]["modules"])


def test_every_domain_module_imports_without_flask_request_machinery():
    result = subprocess.run([sys.executable, "-c", PROBE.format(blocked=BLOCKED)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) >= 20  # every module of crm_meta/meta was imported
    assert report["holding"] == []  # none holds flask's request, session or g


def test_the_probe_can_fail():
    """The blocker really blocks: a module of the HTTP side is refused."""
    probe = PROBE.replace("import crm_meta.meta as domain",
                          "import crm_meta.http.errors\nimport crm_meta.meta as domain")
    result = subprocess.run([sys.executable, "-c", probe.format(blocked=BLOCKED)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "off limits for the domain" in result.stderr
