"""Flask-independent request and response of one Graph call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphRequest:
    """One Graph call, independent of Flask (batch sub-requests use it too)."""

    method: str
    path: str  # relative to the sandbox base, e.g. "/v25.0/me"
    params: dict[str, str]
    query: list[tuple[str, str]]  # the query string, kept for paging URLs
    bearer: str | None
    base_url: str  # the sandbox base, without a trailing slash

    def __post_init__(self):
        # Meta's SDKs send `fields` as a JSON list (facebook-business encodes list parameters
        # as JSON): Meta reads it as the same names, comma-separated.
        raw = self.params.get("fields")
        if isinstance(raw, str) and raw.lstrip().startswith("["):
            try:
                names = json.loads(raw)
            except ValueError:
                return
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                self.params = {**self.params, "fields": ",".join(names)}


@dataclass
class GraphResponse:
    """Status, body (JSON-able, or a raw string) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)
