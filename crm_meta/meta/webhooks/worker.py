"""This process's background pass over Meta's webhooks: route the inbox, then forward the events
that are due. Woken after each stored delivery (never waited on by the request), and run by
the `meta.webhooks` job in whichever process hosts the jobs, so a delivery stored by a process
that died before routing it is routed by the next pass anywhere.

A pass costs a handful of statements whatever it routes, so under a stream of deliveries the
passes are spaced PASS_GAP apart and each takes what arrived meanwhile; a delivery after a
quiet spell starts its pass at once."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from crm_meta.infra import metrics
from crm_meta.infra.clock import Clock
from crm_meta.infra.crypto import TokenCipher
from crm_meta.infra.database import db
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.store import TokenStore
from crm_meta.meta.types import HasAppContext
from crm_meta.meta.webhooks import inbox
from crm_meta.meta.webhooks.forward import EventSender, ForwardSettings
from crm_meta.meta.webhooks.relay import Relay
from crm_meta.meta.webhooks.routing import Router

log = logging.getLogger(__name__)
# Seconds from one woken pass's start to the next one's, at the least. A pass's statements cost
# ~3 ms of CPU whatever it routes, ~50 us more per delivery (bench/webhook_inprocess.py
# --passes): at 500 deliveries/s a worker, 0.1 s makes that ~110 us a delivery where 0.05 s
# made it ~175; a delivery in a stream waits at most 0.1 s for its pass (the bound from
# Meta to the CRM: 1 s at p50).
PASS_GAP = 0.1


class TheApp(HasAppContext, Protocol):
    """The app the worker serves (a Flask app): its settings, and its context for the database."""

    @property
    def config(self) -> Mapping[str, Any]: ...


class WebhookWorker:
    """Router, event sender and one thread; `wake` returns at once."""

    gap = PASS_GAP  # an instance may set its own (a test, a bench)

    def __init__(self, app: TheApp, *, cipher: TokenCipher, store: TokenStore, graph: GraphClient,
                 clock: Clock) -> None:
        config = app.config
        self.app = app
        self.clock = clock
        self.router = Router(ttl=float(config["WEBHOOK_ROUTING_CACHE_SECONDS"]))
        self.sender = EventSender(cipher=cipher, store=store, graph=graph, clock=clock,
                                  settings=ForwardSettings.from_config(config))
        self.relay = Relay(app, self.sender)
        self._writer: inbox.Writer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._requested = self._handled = 0
        self._last_pass = float("-inf")

    def store(self, body: bytes, route: str) -> None:
        """Store one delivery durably (group commit with the deliveries arriving meanwhile)."""
        if self._writer is None:
            with self._lock, self.app.app_context():
                self._writer = self._writer or inbox.Writer(db.engine)
        self._writer.store(body, route, self.clock.now())

    def run_pass(self, stopping: threading.Event | None = None) -> Counter[str]:
        """Route what is stored, forward what is due; counts by result."""
        with self.app.app_context():
            counts = inbox.process_pending(router=self.router, now=self.clock.now)
        counts.update(self.relay.run(stopping))
        if counts.get("gave_up"):
            metrics.WEBHOOK_DEAD_LETTERS.inc(counts["gave_up"])
        return counts

    def wake(self) -> None:
        """Ask for a pass; returns at once."""
        with self._changed:
            self._requested += 1
            self._changed.notify_all()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crm-meta-webhooks", daemon=True)
                self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the passes asked for so far are done (tests, shutdown)."""
        with self._changed:
            target = self._requested
            return self._changed.wait_for(lambda: self._handled >= target, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._handled < self._requested)
            time.sleep(max(0.0, self._last_pass + self.gap - time.monotonic()))  # gather a stream
            with self._changed:
                target = self._requested
            self._last_pass = time.monotonic()
            try:
                self.run_pass()
            except Exception:  # the inbox and the outbox keep everything; the job tries again
                log.exception("webhook pass failed")
            with self._changed:
                self._handled = target
                self._changed.notify_all()
