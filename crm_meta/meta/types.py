"""Types shared by the domain's modules: Meta's JSON and its response headers, a Graph batch's
request, and the discovery's shapes of what a token can see (crm_meta.meta.assets)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, NotRequired, Protocol, TypeAlias, TypedDict


class HasAppContext(Protocol):
    """The app a background worker runs in (a Flask app): its context gives the database session."""

    def app_context(self) -> AbstractContextManager[object]: ...


# A JSON object as Meta sends it (or as it is stored in a JSON column): its values are any JSON.
JsonObject: TypeAlias = dict[str, Any]
# An answer's headers (requests' case-insensitive dict, urllib3's HTTPHeaderDict, a plain dict).
Headers: TypeAlias = Mapping[str, str]


class BatchRequest(TypedDict):
    """One request of a batch, as Meta's batch doc names its keys."""

    relative_url: str
    method: NotRequired[str]  # GET when absent
    name: NotRequired[str]  # for another request's `{result=<name>:<JSONPath>}` reference
    depends_on: NotRequired[str]  # the name of the request this one waits for
    omit_response_on_success: NotRequired[bool]


class AdAccount(TypedDict):
    """The contract's AdAccount."""

    id: str  # act_<account_id>
    account_id: str
    name: str
    currency: str | None
    timezone: str | None
    status: str  # ACCOUNT_STATUS's name, or UNKNOWN
    account_status: int
    business_id: str | None  # None for a personal ad account


class PhoneNumber(TypedDict):
    id: str
    display_phone_number: str | None
    verified_name: str | None
    quality_rating: str | None


class WhatsAppAccount(TypedDict):
    id: str
    name: str | None
    relationship: str  # "owned" or "client" (WABA_EDGES)
    phone_numbers: list[PhoneNumber]


class Business(TypedDict):
    id: str
    name: str
    ad_accounts: list[AdAccount]
    whatsapp_business_accounts: list[WhatsAppAccount]


class Page(TypedDict):
    id: str
    name: str | None
    category: str | None
    tasks: list[str]


class InstagramAccount(TypedDict):
    id: str
    username: str | None
    name: str | None
    page_id: str  # the Page it is linked to
