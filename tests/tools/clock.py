"""A settable clock for unit tests (the product's clocks are in crm_meta.infra.clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """A settable clock for unit tests."""

    def __init__(self, at: datetime | None = None):
        self.at = at or datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)
