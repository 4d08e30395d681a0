"""A connection's statuses as the rules group them, in one place below every layer that reads
them (the domain, the notices, the API's payloads)."""

from __future__ import annotations

# The token no longer works: the tenant must reconnect. A check cannot clear these by itself
# (they are sticky); only a new token through Meta's dialog does.
FAILING_STATUSES = frozenset({"needs_reauth", "expired", "revoked"})
# States the user can only fix by passing through Meta's dialog again.
NEEDS_RECONNECT = FAILING_STATUSES | {"expiring"}
