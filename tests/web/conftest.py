"""Fixtures for the page tests: a compiled Spanish catalogue, and a tenant connected for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from crm_meta.extensions import db
from crm_meta.models import MetaToken

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session", autouse=True)
def _catalogues():
    compile_catalogues()


@pytest.fixture
def connected(meta_flow):
    """Admin logged in, Meta connected through the sandbox; returns the flow helper."""
    response = meta_flow.connect(accept="text/html")
    assert response.status_code == 302, response.data[:300]
    assert "step=select" in response.headers["Location"]
    return meta_flow


@pytest.fixture
def edit_row(app, tenant):
    """Change the tenant's stored connection (status, dates, scopes...) to stage a banner."""

    def edit(**changes):
        with app.app_context():
            row = db.session.scalar(db.select(MetaToken).filter_by(tenant_id=tenant.tenant_id))
            for name, value in changes.items():
                if callable(value):
                    value = value(row)
                setattr(row, name, value)
            db.session.commit()

    return edit
