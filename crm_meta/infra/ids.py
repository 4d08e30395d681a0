"""Identifiers made in one place: who claims a row (host and pid) and a claim's fencing token."""

from __future__ import annotations

import os
import socket
import uuid


def owner_id() -> str:
    """Who claims: host and pid (a per-claim nonce is added by new_claim_id)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def new_claim_id(owner: str | None = None) -> str:
    """A fencing token: who claims, plus a nonce so a later claim by the same process differs."""
    return f"{owner or owner_id()}:{uuid.uuid4().hex[:8]}"[:100]
