"""Injected failures: what a test or a user queues for the next calls to one path, and how a
call takes one."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

_INTEGERS = ("count", "code", "error_subcode", "http_status", "latency_ms")


@dataclass
class Fault:
    """An injected failure (or delay) for the next `count` calls to one path."""

    path: str
    count: int = 1
    code: int | None = None
    error_subcode: int | None = None
    http_status: int | None = None
    latency_ms: int = 0
    malformed: bool = False
    regain_minutes: int = 5
    message: str | None = None
    type: str = "OAuthException"
    is_transient: bool | None = None
    method: str | None = None
    # debug_token only: answer HTTP 200 with the error inside `data` (the inspected token's
    # problem, as Meta reports it) rather than at the top level (the caller's problem).
    inspect_error: bool = False
    # Inside a batch only: the item answers `null` (Meta's timeout inside a batch).
    batch_null: bool = False


def normalize_path(path: str) -> str:
    """Compare paths without a trailing slash (the root stays "/")."""
    path = "/" + path.strip().lstrip("/")
    return path.rstrip("/") or "/"


def parse(spec: dict[str, Any]) -> Fault:
    """A Fault from the control API's JSON; ValueError names what is wrong."""
    path = spec.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError("path must start with / (relative to the sandbox base)")
    unknown = sorted(set(spec) - set(Fault.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    fault = Fault(**{**spec, "path": normalize_path(path)})
    for name in _INTEGERS:
        value = getattr(fault, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer")
    if fault.count < 1:
        raise ValueError("count must be at least 1")
    if fault.code is None and not (fault.malformed or fault.latency_ms or fault.batch_null
                                   or fault.inspect_error):
        raise ValueError("a fault needs code, malformed, latency_ms, batch_null or inspect_error")
    if fault.method:
        fault.method = fault.method.upper()
    return fault


class Faults:
    """The pending faults, first queued first taken."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Queue a fault for a path (relative to the base, e.g. /v25.0/me)."""
        fault = parse(spec)
        with self._lock:
            self._pending.append(fault)
        return asdict(fault)

    def take(self, path: str, method: str, *, in_batch: bool = False) -> Fault | None:
        """Consume one use of the first fault matching this call, if any (batch_null faults
        only match calls inside a batch)."""
        path = normalize_path(path)
        with self._lock:
            for fault in self._pending:
                if fault.batch_null != in_batch:
                    continue
                if fault.path == path and fault.method in (None, method):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._pending.remove(fault)
                    return Fault(**{**asdict(fault), "count": 1})
        return None

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._pending]
