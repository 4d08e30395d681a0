"""`insert_ignore`: one multi-row INSERT ... ON CONFLICT DO NOTHING whose answer is the number of
rows it added, exactly, however many pages the driver splits it into (its callers report it:
`flask webhooks replay` says how many events it queued)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_meta.infra.database import db
from crm_meta.infra.upsert import insert_ignore
from crm_meta.models import NotificationOutbox

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _rows(first: int, last: int) -> list[dict]:
    return [{"id": f"notice-{n:05d}", "tenant_id": None, "event": "warning", "payload": {"n": n},
             "created_at": NOW} for n in range(first, last)]


@pytest.mark.parametrize("which", ["app", "pg_app"])
def test_it_counts_the_rows_it_added_across_pages_and_skips_the_rest(request, which):
    app = request.getfixturevalue(which)
    with app.app_context():
        assert insert_ignore(NotificationOutbox, _rows(0, 500)) == 500
        # 2,500 rows (more than one page of the driver's 1,000), 500 of them already there.
        assert insert_ignore(NotificationOutbox, _rows(0, 2500)) == 2000
        assert insert_ignore(NotificationOutbox, _rows(0, 2500)) == 0
        assert insert_ignore(NotificationOutbox, []) == 0
        db.session.commit()
        stored = db.session.get(NotificationOutbox, "notice-02499")
        assert stored is not None and stored.payload == {"n": 2499} and stored.attempts == 0
        assert stored.channels_done == []  # the model's defaults apply to the table's INSERT too
        assert db.session.query(NotificationOutbox).count() == 2500
