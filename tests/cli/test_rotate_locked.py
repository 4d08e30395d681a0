"""`flask crypto rotate` never reports success while a row is still under an older key."""

from __future__ import annotations

from contextlib import closing

import psycopg2
import pytest

from crm_meta.meta import store as store_module
from tests.helpers.cli import invoke
from tests.helpers.database import raw_rows
from tests.helpers.settings import KEY_A, KEY_B, PLAINTEXT

pytestmark = pytest.mark.postgres


@pytest.fixture
def rotation(make_app, make_tenant, build_app, postgres_url, store_token):
    """Two tenants' tokens under key A; an app whose current key is B (A kept to decrypt)."""
    old = make_app(database_url=postgres_url, ENCRYPTION_KEY=KEY_A)
    tenants = [make_tenant(slug, app_=old) for slug in ("acme", "globex")]
    for tenant in tenants:
        store_token(old, tenant.tenant_id)
    new = build_app(postgres_url, ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEYS_PREVIOUS=[KEY_A])
    return new, tenants


@pytest.fixture
def lock_row(postgres_url):
    """Hold a tenant's row FOR UPDATE in another PostgreSQL session (as a running sweep does)."""
    connections = []

    def hold(tenant_id: int):
        conn = psycopg2.connect(postgres_url)
        connections.append(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM meta_tokens WHERE tenant_id = %s FOR UPDATE", (tenant_id,))
        return conn

    yield hold
    for conn in connections:
        with closing(conn):
            conn.rollback()


def key_ids(app) -> dict[int, str]:
    return {int(row["tenant_id"]): row["key_id"] for row in raw_rows(app, "meta_tokens")}


class FakeTime:
    """Time for the retry loop only: each sleep moves the clock on at once."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_row_locked_throughout_makes_rotate_fail_naming_it(rotation, lock_row, monkeypatch, kid):
    app, (acme, globex) = rotation
    lock_row(globex.tenant_id)
    fake = FakeTime()
    monkeypatch.setattr(store_module, "time", fake, raising=False)

    result = invoke(app, ["crypto", "rotate"])  # the documented command, default wait

    assert result.exit_code != 0, result.output
    assert "globex (id" in result.output and "acme" not in result.output
    assert "ENCRYPTION_KEYS_PREVIOUS" in result.output and PLAINTEXT not in result.output
    assert fake.sleeps and sum(fake.sleeps) == 60  # retried for the whole default wait
    assert invoke(app, ["crypto", "rotate", "--wait", "0"]).exit_code != 0
    keys = key_ids(app)
    assert keys[acme.tenant_id] == kid(app) != keys[globex.tenant_id]  # the free row did rotate


def test_rotate_waits_for_a_locked_row_and_then_succeeds(rotation, lock_row, monkeypatch, stored_token, kid):
    app, (acme, globex) = rotation
    holder = lock_row(globex.tenant_id)
    waits = []

    def sleep(seconds):  # the other session commits while rotate waits for it
        waits.append(seconds)
        holder.commit()

    fake = FakeTime()
    fake.sleep = sleep
    monkeypatch.setattr(store_module, "time", fake, raising=False)

    result = invoke(app, ["crypto", "rotate", "--wait", "30"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted 2 token(s)" in result.output
    assert len(waits) == 1
    assert set(key_ids(app).values()) == {kid(app)}
    assert stored_token(app, globex.tenant_id) == PLAINTEXT
