"""Types shared by the domain's modules: Meta's JSON and its response headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

# A JSON object as Meta sends it (or as it is stored in a JSON column): its values are any JSON.
JsonObject: TypeAlias = dict[str, Any]
# An answer's headers (requests' case-insensitive dict, urllib3's HTTPHeaderDict, a plain dict).
Headers: TypeAlias = Mapping[str, str]
