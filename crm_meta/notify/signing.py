"""The signature of everything crm-meta POSTs to the CRM (connection notices, Meta's events):
Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`), made by
the `standardwebhooks` library. A secret written `whsec_<base64>` is used as the spec says; any
other secret's UTF-8 bytes are the key (so a receiver uses `whsec_` + base64 of it)."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks import Webhook, WebhookVerificationError

ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"


def webhook(secret: str) -> Webhook:
    """The library's signer/verifier for one of our secrets."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def signed_headers(secret: str, message_id: str, body: bytes, when: datetime | None = None) -> dict:
    """The three Standard Webhooks headers for this body. `when` is wall-clock time: receivers
    refuse a timestamp more than five minutes from their own clock."""
    when = when or datetime.now(UTC)
    return {ID_HEADER: message_id, TIMESTAMP_HEADER: str(int(when.timestamp())),
            SIGNATURE_HEADER: webhook(secret).sign(message_id, when, body)}


def verify(secret: str, body: bytes, headers) -> bool:
    """What a receiver does (with the library): the signature and a fresh timestamp."""
    try:
        webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        return False
    return True
