"""Request parameters read one way everywhere."""

from __future__ import annotations

TRUE = frozenset({"1", "true"})


def flag(value: str | None) -> bool:
    """A boolean query or form parameter: "1" and "true" are on, anything else (or none) off."""
    return value in TRUE
