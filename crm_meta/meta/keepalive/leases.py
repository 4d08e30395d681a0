"""Cross-process safety of the keep-alive: a cluster-wide lock, per-connection claims with a
lease, and fencing (a result is written only while the claim, and the token checked, are ours)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, text, update

from crm_meta.infra.database import autocommit, db
from crm_meta.models import MetaConnection

log = logging.getLogger(__name__)
TOKENS = MetaConnection.__table__


@dataclass(frozen=True)
class Ticket:
    """A connection taken for one check, with what the check needs, read by the claim itself."""

    row_id: int
    tenant_id: int
    token_ciphertext: str  # TokenStore.read opens it; also the fence's token check
    extension_attempted_at: datetime | None
    claim_id: str | None  # None in a dry run: nothing is claimed
    claimed_until: datetime | None

    def __repr__(self) -> str:  # never a ciphertext in a log line or a traceback
        return f"Ticket(row {self.row_id}, claim {self.claim_id})"


# What a ticket is made of, in Ticket's order after the claim id (RETURNING or SELECT).
TICKET_COLUMNS = (TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.access_token,
                  TOKENS.c.extension_attempted_at, TOKENS.c.claimed_until)


def ticket(values: Sequence[Any], claim_id: str | None) -> Ticket:
    """A Ticket from TICKET_COLUMNS' values."""
    row_id, tenant_id, ciphertext, attempted, until = values
    return Ticket(row_id, tenant_id, ciphertext, attempted, claim_id, until)


# -- the cluster-wide lock -------------------------------------------------------------------
_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"crm_meta:{name}".encode()).digest()[:8], "big", signed=True)


class ClusterLock:
    """pg_try_advisory_lock on a dedicated connection (dies with the session); a process lock
    on other databases."""

    def __init__(self, engine: Engine, name: str = "keepalive"):
        self.engine = engine
        self.name = name
        self.key = _lock_key(name)
        self._conn: Connection | None = None
        self._local: threading.Lock | None = None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
                conn.commit()  # session-level lock: no transaction stays open
            except Exception:
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn = conn
            return True
        with _local_locks_guard:
            lock = _local_locks.setdefault(self.name, threading.Lock())
        if lock.acquire(blocking=False):
            self._local = lock
            return True
        return False

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                conn.commit()
                conn.close()
            except Exception:
                # Never hand a connection that may still hold the lock back to the pool.
                log.warning("advisory unlock failed; discarding the connection", exc_info=True)
                conn.invalidate()
                conn.close()
        if self._local is not None:
            local = self._local
            self._local = None
            local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- claims ----------------------------------------------------------------------------------
def _claim_free(now: datetime, lease: timedelta) -> ColumnElement[bool]:
    # A claim further ahead than two leases was made under a clock that has since gone back
    # (the sandbox's reset): treat it as stale rather than locked for weeks.
    return or_(MetaConnection.claimed_until.is_(None), MetaConnection.claimed_until <= now,
               MetaConnection.claimed_until > now + 2 * lease)


def _not_throttled(now: datetime) -> ColumnElement[bool]:
    return or_(MetaConnection.throttled_until.is_(None), MetaConnection.throttled_until <= now)


def _is_due(now: datetime) -> ColumnElement[bool]:
    return or_(MetaConnection.next_check_at.is_(None), MetaConnection.next_check_at <= now)


def due_ids(now: datetime, lease: timedelta) -> list[int]:
    """Connections due for a check, most overdue first."""
    query = (db.select(MetaConnection.id)
             .where(_is_due(now), _not_throttled(now), _claim_free(now, lease))
             .order_by(MetaConnection.next_check_at.asc().nulls_first(), MetaConnection.id))
    ids = list(db.session.scalars(query))
    db.session.rollback()
    return ids


def claim_tickets(row_ids: list[int], claim_id: str, now: datetime, lease: timedelta, *,
                  due_only: bool) -> list[Ticket]:
    """Conditional UPDATE ... RETURNING: a row becomes ours only if nobody holds it (and, for
    sweeps, it is still due: a check finished elsewhere moved next_check_at on). Returns the
    rows won with what their checks need: one statement, its own transaction, for a batch."""
    conditions = [TOKENS.c.id.in_(row_ids), _claim_free(now, lease), _not_throttled(now)]
    if due_only:
        conditions.append(_is_due(now))
    statement = (update(TOKENS).where(and_(*conditions))
                 .values(claimed_by=claim_id, claimed_until=now + lease).returning(*TICKET_COLUMNS))
    with db.engine.connect() as conn:
        autocommit(conn)  # PostgreSQL: no BEGIN/COMMIT round trips around it
        won = conn.execute(statement).all()
        conn.commit()
    return [ticket(values, claim_id) for values in won]


def claim(row_ids: list[int], claim_id: str, now: datetime, lease: timedelta, *,
          due_only: bool) -> set[int]:
    """The ids claim_tickets won."""
    return {t.row_id for t in claim_tickets(row_ids, claim_id, now, lease, due_only=due_only)}


def still_ours(row: MetaConnection | None, claim_id: str | None, ciphertext: str | None = None) -> bool:
    """The fence: the claim is still ours and, when given, the token is still the one checked
    (a reconnect replaces it; a late verdict about the old one must not land). A dry run's
    ticket holds no claim (None): nothing of it is ours."""
    if row is None or claim_id is None or row.claimed_by != claim_id:
        return False
    return ciphertext is None or row.token_ciphertext == ciphertext


def fence(row_id: int, claim_id: str, *, ciphertext: str | None = None) -> MetaConnection | None:
    """Re-read the row (locked for the write-back); None unless the claim is still ours and,
    when given, the token is still the one we checked (a reconnect replaces it)."""
    query = (db.select(MetaConnection).where(MetaConnection.id == row_id)
             .execution_options(populate_existing=True))
    if ciphertext is not None:
        query = query.with_for_update()
    row: MetaConnection | None = db.session.scalar(query)
    return row if still_ours(row, claim_id, ciphertext) else None


def release(row_id: int, claim_id: str | None) -> None:
    """Give a claim back without recording anything (used when a check crashed); a dry run's
    ticket (None) holds none."""
    if claim_id is None:
        return
    db.session.execute(
        update(MetaConnection).where(MetaConnection.id == row_id, MetaConnection.claimed_by == claim_id)
        .values(claimed_by=None, claimed_until=None).execution_options(synchronize_session=False))
    db.session.commit()
