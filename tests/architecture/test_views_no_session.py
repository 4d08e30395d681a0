"""Thin views: no `views.py` touches the database session; its work lives in a service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "crm_meta"
VIEWS = sorted(PACKAGE.rglob("views.py"))


def offences(source: str) -> list[str]:
    """Each import of the `db` handle (or of crm_meta.infra.database) and each `db.session`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "crm_meta.infra.database":
            found.append(f"line {node.lineno}: from crm_meta.infra.database import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "crm_meta.infra" and any(
                alias.name == "database" for alias in node.names):
            continue  # the module's functions (database.answers()) are services, not the session
        elif isinstance(node, ast.Import) and any(a.name == "crm_meta.infra.database" for a in node.names):
            found.append(f"line {node.lineno}: import crm_meta.infra.database")
        elif isinstance(node, ast.Attribute) and node.attr == "session" and (
                isinstance(node.value, ast.Name) and node.value.id == "db"
                or isinstance(node.value, ast.Attribute) and node.value.attr == "db"):
            found.append(f"line {node.lineno}: db.session")
    return found


def test_every_front_end_has_views():
    names = {p.parent.name for p in VIEWS}
    assert {"api", "web", "internal", "callbacks", "auth", "ops", "gateway", "channels", "webhooks"} <= names


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_views_do_not_use_the_session(path):
    assert offences(path.read_text()) == []


@pytest.mark.parametrize("source", [
    "from crm_meta.infra.database import db\n",
    "import crm_meta.infra.database\n",
    "def f():\n    db.session.commit()\n",
    "def f():\n    database.db.session.get(X, 1)\n",
])
def test_the_check_catches_the_session(source):
    assert offences(source)
