"""Issue 23 item 4: a connect's discovery has a round budget (at most 5 sequential Graph round
trips on its critical path at any asset count); what it leaves unread is read afterwards by the
discovery job, durably (the row's marker), and merged idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from crm_meta import jobs
from crm_meta.infra.database import db
from crm_meta.meta import assets, channels, connections, exchange
from crm_meta.meta.keepalive.leases import ClusterLock
from crm_meta.models import MetaConnection
from crm_meta.runtime import of
from tests.channels.conftest import FIRST_PAGE
from tests.helpers.users import bearer

PAGES = 1002  # the sandbox's two Pages and 1000 more: 11 pages of /me/accounts
CONNECT_TRIPS = 5  # the bound on the connect's critical path


@pytest.fixture
def small_batches(monkeypatch):
    """Three requests a batch instead of Meta's 50: the budget's two rounds then read 600 more
    Pages, not 10,000, so a thousand Pages are enough to go past it."""
    monkeypatch.setattr(assets, "BATCH_SIZE", 3)


@pytest.fixture
def trips(app, monkeypatch) -> list[str]:
    """Every Graph round trip (each HTTP exchange with Meta, a batch being one), in order:
    `batch` for a batch, the path otherwise."""
    graph = of(app).graph
    seen: list[str] = []
    once, batch = graph._once, graph.batch

    def batched(requests_, *, token):
        seen.append("batch")
        return batch(requests_, token=token)

    # A batch is a POST to the Graph root (an empty path): counted once, as `batch`, above.
    monkeypatch.setattr(graph, "_once", lambda out: (out.path.strip("/") and seen.append(out.path))
                        or once(out))
    monkeypatch.setattr(graph, "batch", batched)
    return seen


def stored(app) -> tuple[MetaConnection, dict[str, str]]:
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        tokens = channels.page_tokens(of(app).store, row)
        pages = [c for c in row.channels if c.asset_type == "page"]
        db.session.expunge_all()
        return row, tokens, pages


def test_a_connect_past_the_budget_answers_within_it_and_the_job_reads_the_rest(
        app, panel, sandbox, small_batches, trips):
    sandbox.post("config", extra_pages=PAGES - 2)
    response = panel.connect()
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()["data"]
    assert len(trips) <= CONNECT_TRIPS, trips
    assert trips.count("batch") == exchange.CONNECT_BATCH_ROUNDS  # the budget, all of it used
    assert answer["discovery_running"] is True and len(answer["pages"]) < PAGES
    status = panel.status()
    assert status["discovery_running"] is True
    row, tokens, pages = stored(app)
    assert row.discovery_pending_since is not None and len(pages) == len(tokens) < PAGES
    assert "EAA" not in response.get_data(as_text=True) + str(status)  # never a Page token

    trips.clear()
    jobs.discovery_tick(app)  # the scheduled job, as a process after a restart would run it
    row, tokens, pages = stored(app)
    assert row.discovery_pending_since is None
    assert len({p.asset_id for p in pages}) == len(pages) == PAGES == len(tokens)
    assert len(row.pages) == PAGES
    assert panel.status()["discovery_running"] is False
    assert trips  # it did ask Meta

    trips.clear()
    jobs.discovery_tick(app)  # nothing pending: nothing asked, nothing changed
    assert trips == []
    assert len(stored(app)[2]) == PAGES


def test_a_chosen_page_beyond_the_budget_stays_chosen_across_a_reconnect(
        app, panel, sandbox, small_batches):
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    jobs.discovery_tick(app)
    last = sorted(stored(app)[2], key=lambda c: c.position)[-1].asset_id
    assert panel.select([FIRST_PAGE, last]).status_code == 200
    assert panel.connect().status_code == 200  # partial again: the last Page is not re-read
    active = {c.asset_id for c in stored(app)[2] if c.active}
    assert active == {FIRST_PAGE, last}  # a partial discovery removes nothing
    jobs.discovery_tick(app)
    row, tokens, pages = stored(app)
    assert row.discovery_pending_since is None and len(pages) == PAGES
    assert {c.asset_id for c in pages if c.active} == {FIRST_PAGE, last}


def test_the_products_status_and_hub_say_discovery_is_running(app, panel, sandbox, small_batches,
                                                             client, tenant):
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    status = client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id))
    assert status.status_code == 200, status.get_json()
    assert status.get_json()["data"]["discovery_running"] is True
    jobs.discovery_tick(app)
    status = client.get("/crm/marketing/token-status", headers=bearer(tenant.tenant_id))
    assert status.get_json()["data"]["discovery_running"] is False


def test_a_failing_job_keeps_the_marker_for_the_next_run(app, panel, sandbox, small_batches):
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    sandbox.fault("/v25.0/me", code=2, http_status=500, count=20)  # Meta down for a while
    jobs.discovery_tick(app)  # logged, marker kept
    assert stored(app)[0].discovery_pending_since is not None


def test_one_process_at_a_time_finishes_discoveries(app, panel, sandbox, small_batches, trips):
    """Another process holding the discovery's lock: this one skips the tick (asks Meta nothing)
    rather than list the same assets again; the next tick, lock free, finishes it."""
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    trips.clear()
    with app.app_context(), ClusterLock(db.engine, "discovery") as held:
        assert held
        jobs.discovery_tick(app)
    assert trips == [] and stored(app)[0].discovery_pending_since is not None
    jobs.discovery_tick(app)
    assert stored(app)[0].discovery_pending_since is None


def test_a_discovery_that_keeps_failing_is_tried_less_and_less_often(app, panel, sandbox,
                                                                     small_batches, trips):
    """A tenant whose Meta calls fail does not cost a full listing on every tick: after a try,
    the job waits as long as the discovery had then been pending (so the waits double), at most
    DISCOVERY_RETRY_CAP; once Meta answers again the discovery completes and the backoff ends."""
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    sandbox.fault("/v25.0/me", code=2, http_status=500, count=10_000)  # Meta down for long
    sandbox.advance(60)  # the discovery pending for a minute when the job first tries
    jobs.discovery_tick(app)
    assert trips  # tried, failed
    trips.clear()
    jobs.discovery_tick(app)  # the next tick: about a minute too early
    assert trips == []

    def tried_at(moment: datetime) -> bool:
        """The job's pass as a tick at `moment` runs it: whether it asked Meta."""
        trips.clear()
        with app.app_context():
            connections.finish_discoveries(graph=of(app).graph, store=of(app).store, now=moment)
        return bool(trips)

    def last_try() -> datetime:
        return stored(app)[0].discovery_attempted_at

    since = stored(app)[0].discovery_pending_since
    second = last_try() + (last_try() - since)  # waited as long as it had been pending
    assert not tried_at(second - timedelta(seconds=1))
    assert tried_at(second) and last_try() == second
    third = second + (second - since)  # the wait doubled
    assert not tried_at(third - timedelta(seconds=1))
    assert tried_at(third)
    assert tried_at(since + timedelta(hours=10))  # much later: tried, and then...
    capped = last_try() + connections.DISCOVERY_RETRY_CAP  # ...the next at most the cap apart
    assert not tried_at(capped - timedelta(seconds=1))
    assert tried_at(capped)
    assert stored(app)[0].discovery_pending_since == since  # the marker kept throughout

    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()  # Meta is back
    assert tried_at(capped + connections.DISCOVERY_RETRY_CAP)
    row, tokens, pages = stored(app)
    assert row.discovery_pending_since is None and row.discovery_attempted_at is None
    assert len(pages) == PAGES


def test_a_new_connect_is_tried_at_the_next_tick_whatever_the_last_one_s_backoff(
        app, panel, sandbox, small_batches, trips):
    sandbox.post("config", extra_pages=PAGES - 2)
    assert panel.connect().status_code == 200
    sandbox.fault("/v25.0/me", code=2, http_status=500, count=5)  # one try's worth of failures
    sandbox.advance(3600)
    jobs.discovery_tick(app)  # fails: the next try would wait the cap
    assert stored(app)[0].discovery_attempted_at is not None
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()
    assert panel.connect().status_code == 200  # a new grant, partial again
    assert stored(app)[0].discovery_attempted_at is None
    trips.clear()
    jobs.discovery_tick(app)
    assert trips and stored(app)[0].discovery_pending_since is None


@pytest.mark.parametrize(("pending_for", "tried_ago", "due"), [
    (None, None, True),  # never tried
    (timedelta(seconds=35), timedelta(seconds=30), True),  # tried at 5 s: waits 5 s, a tick
    (timedelta(minutes=3), timedelta(minutes=1), False),  # tried at 2 min: waits 2 min...
    (timedelta(minutes=4), timedelta(minutes=2), True),  # ...and no more
    (timedelta(days=3), timedelta(minutes=29), False),  # long pending: waits the cap...
    (timedelta(days=3), timedelta(minutes=30), True),  # ...and no more
])
def test_discovery_due_doubles_the_wait_up_to_the_cap(pending_for, tried_ago, due):
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    since = now - (pending_for or timedelta(minutes=1))
    assert connections.discovery_due(since, tried_ago and now - tried_ago, now) is due
