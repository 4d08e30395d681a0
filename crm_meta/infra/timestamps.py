"""Timestamps as the API, the notices and the audit trail write them."""

from __future__ import annotations

from datetime import datetime
from typing import overload


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: datetime | None) -> str | None: ...


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the envelope's timestamps."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
