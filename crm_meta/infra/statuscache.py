"""A per-process cache of the status read (a tenant and its connection's status columns), kept
true across processes by PostgreSQL LISTEN/NOTIFY: zero database round trips per status read
in steady state.

Triggers on `tenants` and `meta_tokens` NOTIFY the tenant's id whenever a status column, a
connection or a tenant changes, whoever writes (migrations 0006, 0011, 0012; `create_all`
gets them too). Each process LISTENs on a connection of its own and drops that tenant's entry.
Writes made through this process's own engine clear the cache at their commit, before the
notification comes back. Entries also expire (STATUS_CACHE_SECONDS), which bounds the damage
should a notification ever be lost (a listener connection that died silently is noticed by a
ping).

A read may race a change: it takes the cache's generation before going to the database and
stores its answer only if no invalidation happened meanwhile. While the listener is not
connected nothing is cached and every read goes to the database.
"""

from __future__ import annotations

import logging
import os
import re
import select
import socket
import threading
import time
import weakref
from collections.abc import Hashable

from sqlalchemy import event

log = logging.getLogger(__name__)
CHANNEL = "crm_meta_status"
MAX_ENTRIES = 10_000  # beyond this the cache starts over (a tenant is one entry per ref)
PING_EVERY = 30.0  # seconds of silence after which the listener checks its connection
# Seconds a ping may wait for its answer: a connection black-holed by the network (no reset,
# no answer) would otherwise hold the listener, and the cache, forever.
PING_TIMEOUT = 5.0
RECONNECT_AFTER = 2.0  # seconds between attempts while the database is away
# Writes whose commit must clear this process's cache at once (the gateway's credentials are
# cached here too: crm_meta.auth.gateway_tokens).
_WRITE = r'\s*(insert\s+into|update|delete\s+from)\s+"?'
WRITES = re.compile(_WRITE + r"(meta_tokens|tenants|gateway_tokens|service_keys)\b", re.I)
# Writes to the credentials' tables, which have no trigger: the writer announces them itself
# (`announce_credential_writes`) to every process. A key's or token's last use, kept to the
# minute, changes nothing a cached credential decides and is neither announced nor clears.
CREDENTIAL_WRITES = re.compile(_WRITE + r"(gateway_tokens|service_keys)\b", re.I)
LAST_USE_ONLY = re.compile(r'\s*update\s+"?(gateway_tokens|service_keys)"?\s+'
                           r"set\s+last_used_at\s*=\s*\S+\s+where\b", re.I)
_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> StatusCache
_caches_guard = threading.Lock()
_wrote: weakref.WeakSet = weakref.WeakSet()  # connections whose transaction wrote to the tables


def for_engine(engine, ttl: float) -> StatusCache | None:
    """The engine's cache (started on first use); None when off or not on PostgreSQL."""
    if ttl <= 0 or engine.dialect.driver != "psycopg2":
        return None
    cache = _caches.get(engine)
    if cache is None or cache.pid != os.getpid():  # a forked child listens for itself
        with _caches_guard:
            cache = _caches.get(engine)
            if cache is None or cache.pid != os.getpid():
                cache = _caches[engine] = StatusCache(engine, ttl)
    return cache


class StatusCache:
    def __init__(self, engine, ttl: float):
        self.ttl = ttl
        self.pid = os.getpid()
        self._entries: dict[Hashable, tuple[float, int, object]] = {}
        self._generation = 0
        self._ready = False  # LISTEN is in place: invalidations will reach us
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._changed = threading.Condition(self._lock)  # for tests: an invalidation happened
        self._engine_ref = weakref.ref(engine)
        _watch_commits(engine)
        threading.Thread(target=self._listen, name="status-cache", daemon=True).start()

    # -- the cache ---------------------------------------------------------------------------
    def get(self, key: Hashable):
        """The cached value, or None (also while not listening)."""
        entry = self._entries.get(key)
        if entry is None or not self._ready or entry[0] < time.monotonic():
            return None
        return entry[2]

    def generation(self) -> int | None:
        """Taken before reading the database; None while nothing may be cached."""
        with self._lock:
            return self._generation if self._ready else None

    def put(self, key: Hashable, tenant_id: int, value, generation: int | None,
            ttl: float | None = None) -> None:
        """Keep a value read after `generation` was taken, unless something changed since (for
        `ttl` seconds when given and shorter than the cache's)."""
        if generation is None:
            return
        with self._lock:
            if not self._ready or generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            seconds = self.ttl if ttl is None else min(ttl, self.ttl)
            self._entries[key] = (time.monotonic() + seconds, tenant_id, value)

    def invalidate(self, tenant_id: int | None = None) -> None:
        """Drop a tenant's entries (every entry when None)."""
        with self._lock:
            self._generation += 1
            if tenant_id is None:
                self._entries.clear()
            else:
                for key in [k for k, e in self._entries.items() if e[1] == tenant_id]:
                    del self._entries[key]
            self._changed.notify_all()

    def wait_for_invalidation(self, since: int, timeout: float) -> bool:
        """Block until the generation moves past `since` (tests and benchmarks)."""
        with self._lock:
            return self._changed.wait_for(lambda: self._generation > since, timeout)

    def close(self) -> None:
        self._closed.set()

    def _set_ready(self, ready: bool) -> None:
        with self._lock:
            self._ready = ready
            self._generation += 1
            self._entries.clear()

    # -- the listener ------------------------------------------------------------------------
    def _listen(self) -> None:
        while not self._closed.is_set():
            engine = self._engine_ref()
            if engine is None:
                return  # the app is gone
            try:
                raw = engine.raw_connection()
            except Exception:
                log.warning("status cache: database unreachable; reads go to the database")
                del engine
                self._closed.wait(RECONNECT_AFTER)
                continue
            del engine
            raw.detach()  # ours for good: never back into the pool
            connection = raw.dbapi_connection
            try:
                self._serve(connection)
            except Exception:
                log.warning("status cache: listener connection lost; reads go to the database "
                            "until it is back", exc_info=log.isEnabledFor(logging.DEBUG))
            finally:
                self._set_ready(False)
                if not connection.closed:
                    connection.close()
            self._closed.wait(RECONNECT_AFTER)

    def _serve(self, connection) -> None:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        self._set_ready(True)
        quiet_since = time.monotonic()
        while not self._closed.is_set() and self._engine_ref() is not None:
            if select.select([connection], [], [], 1.0) == ([], [], []):
                if time.monotonic() - quiet_since >= PING_EVERY:
                    _ping(connection, PING_TIMEOUT)  # raises when the connection is dead
                    quiet_since = time.monotonic()
                continue
            connection.poll()
            quiet_since = time.monotonic()
            while connection.notifies:
                payload = connection.notifies.pop(0).payload
                self.invalidate(int(payload) if payload.isdigit() else None)


def _ping(connection, timeout: float) -> None:
    """`SELECT 1`, answered within `timeout` seconds or the socket is shut under it (the read
    then fails, and the listener reconnects as for any lost connection)."""
    timer = threading.Timer(timeout, _shut, args=(connection,))
    timer.daemon = True
    timer.start()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        timer.cancel()


def _shut(connection) -> None:
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read with end-of-file
        log.warning("status cache: the listener's ping got no answer in time; reconnecting")
    except (OSError, ValueError):
        pass  # closed meanwhile


def _watch_commits(engine) -> None:
    """Writes to the two tables through this engine clear the cache when they commit."""
    if event.contains(engine, "after_cursor_execute", _note_write):
        return
    event.listen(engine, "after_cursor_execute", _note_write)
    event.listen(engine, "commit", _committed)
    event.listen(engine, "rollback", _wrote.discard)


def _note_write(conn, _cursor, statement, *_rest) -> None:  # after_cursor_execute's signature
    if WRITES.match(statement) and not LAST_USE_ONLY.match(statement):
        _wrote.add(conn)


def announce_credential_writes(engine) -> None:
    """Every write to the gateway's credentials (tokens, service keys) through `engine` NOTIFYs
    every process's cache, in the writer's transaction: PostgreSQL delivers it at COMMIT, never
    for a rollback. Installed on every app's engine (a CLI's revoke too, which caches nothing)."""
    if engine.dialect.driver != "psycopg2" or event.contains(engine, "after_cursor_execute", _announce):
        return
    event.listen(engine, "after_cursor_execute", _announce)


def _announce(conn, cursor, statement, *_rest) -> None:  # after_cursor_execute's signature
    if CREDENTIAL_WRITES.match(statement) and not LAST_USE_ONLY.match(statement):
        # Its own cursor: the statement's cursor still holds its result (rowcount, RETURNING).
        with cursor.connection.cursor() as notify:
            notify.execute("SELECT pg_notify(%s, '*')", (CHANNEL,))


def _committed(conn) -> None:
    if conn in _wrote:
        _wrote.discard(conn)
        cache = _caches.get(conn.engine)
        if cache is not None:
            cache.invalidate()
