"""Fixtures for the page tests: a compiled Spanish catalogue, and a tenant connected for real."""

from __future__ import annotations

import pytest

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection


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
            row = db.session.scalar(db.select(MetaConnection).filter_by(tenant_id=tenant.tenant_id))
            for name, value in changes.items():
                if callable(value):
                    value = value(row)
                setattr(row, name, value)
            db.session.commit()

    return edit
