"""Notify fixtures: a notice, a fake SMTP client, the outbox's rows and notices queued in it, and no
scheduler left running after a test."""

from __future__ import annotations

import pytest

from crm_meta import jobs, notify
from crm_meta.infra.clock import FrozenClock
from crm_meta.infra.database import db
from crm_meta.models import NotificationOutbox
from crm_meta.notify import Notice

NOW = FrozenClock().now()


@pytest.fixture
def notice():
    """A token warning for tenant 7 (acme): `notice(**fields)`."""

    def make(**fields) -> Notice:
        return Notice.create(event="warning", tenant_id=7, status="expiring", now=NOW, kind="token", days=7,
                             ends_at="2026-12-05T12:00:00Z", tenant_slug="acme", tenant_name="Acme",
                             recipients=("admin@acme.test",), **fields)

    return make


class FakeSMTP:
    sent: list = []

    def __init__(self, host, port, timeout, context=None):
        self.host, self.port, self.context = host, port, context

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def ehlo(self):
        pass

    def has_extn(self, name):
        return True

    def starttls(self, context=None):
        self.tls, self.context = True, context

    def login(self, user, password):
        self.user = user

    def send_message(self, message):
        FakeSMTP.sent.append((self, message))


@pytest.fixture
def fake_smtp():
    """An smtplib.SMTP stand-in (`smtp_factory=`) recording what it sends in `.sent`, emptied here."""
    FakeSMTP.sent = []
    return FakeSMTP


@pytest.fixture
def outbox():
    """The outbox's rows, oldest first, detached: `outbox(app)`."""

    def read(app) -> list[NotificationOutbox]:
        order = (NotificationOutbox.created_at, NotificationOutbox.id)
        with app.app_context():
            rows = list(db.session.scalars(db.select(NotificationOutbox).order_by(*order)))
            db.session.expunge_all()
            return rows

    return read


@pytest.fixture
def queue_notices():
    """Outbox rows committed as a sweep would, due now by the app's clock:
    `queue_notices(app, tenant_id, count=1)` returns their ids."""

    def queue(app, tenant_id: int, count: int = 1) -> list[str]:
        from crm_meta.runtime import runtime

        with app.app_context():
            now = runtime().clock.now()
            notices = [Notice.create(event="warning", tenant_id=tenant_id, status="expiring", now=now,
                                     kind="token", days=7, ends_at="2026-12-05T12:00:00Z",
                                     recipients=("admin@acme.test",)) for _ in range(count)]
            db.session.add_all(notify.outbox_rows(notices, now))
            db.session.commit()
            return [n.id for n in notices]

    return queue


@pytest.fixture(autouse=True)
def _no_scheduler_left():
    yield
    jobs.shutdown()
