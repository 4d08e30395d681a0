"""Recognising a Meta token in an answer: the sandbox's tokens start with `EAA` (as Meta's do),
app tokens are `<app id>|<secret>`, and a key named like a token carries one."""

from __future__ import annotations

import json
import re

PROXY = "/internal/meta/connections/{}/graph/{}"
TOKEN_TEXT = re.compile(r"EAA[A-Za-z0-9_-]{20,}|\d{6,}\|[A-Za-z0-9_-]{16,}")
TOKEN_KEY = re.compile(r"token|secret", re.IGNORECASE)


def token_keys(node, path: str = "$") -> list[str]:
    """Where, in a JSON value, a key is named like a token or secret."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if TOKEN_KEY.search(key):
                found.append(f"{path}.{key}")
            found += token_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += token_keys(value, f"{path}[{n}]")
    return found


def tokens_in(response) -> list[str]:
    """Every token-like string or key in a Flask test response's body and headers."""
    text = response.get_data(as_text=True)
    found = TOKEN_TEXT.findall(text) + TOKEN_TEXT.findall(str(dict(response.headers)))
    found += [m for m in ("access_token=", "appsecret_proof=") if m in text]
    try:
        found += token_keys(json.loads(text))
    except ValueError:
        pass
    return found
