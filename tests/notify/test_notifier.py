"""The notifier in isolation: the signed webhook and its retries (requests-mock), e-mail over
STARTTLS (a fake SMTP client)."""

from __future__ import annotations

import base64
import ssl

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from crm_meta.notify import Notifier
from tests.tools.configs import config_values


def notifier(**config) -> Notifier:
    base = {"NOTIFY_WEBHOOK_URL": "https://hooks.example/meta", "NOTIFY_WEBHOOK_SECRET": "s3cret"}
    return Notifier(config_values(**{**base, **config}), sleep=lambda seconds: None)


def test_webhook_body_is_signed_and_retried_with_backoff(requests_mock, notice):
    hook = requests_mock.post("https://hooks.example/meta", [
        {"status_code": 502}, {"exc": requests.ConnectTimeout}, {"status_code": 204}])
    item = notice()

    assert notifier().deliver(item) == {"webhook": "delivered"}

    assert hook.call_count == 3
    last = hook.last_request
    # The receiver verifies the Standard Webhooks signature with the library: a plain secret's
    # bytes are the key, i.e. whsec_ + base64 of it (docs/notifications.md).
    receiver = Webhook("whsec_" + base64.b64encode(b"s3cret").decode())
    body = receiver.verify(last.body, dict(last.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(b"other").verify(last.body, dict(last.headers))
    assert body["event"] == "meta.connection.warning" and body["tenant"]["slug"] == "acme"
    assert "recipients" not in body and last.headers["webhook-id"] == item.id


def test_webhook_gives_up_after_its_attempts_and_never_retries_a_refusal(requests_mock, notice):
    hook = requests_mock.post("https://hooks.example/meta", status_code=500)
    assert notifier().deliver(notice())["webhook"].startswith("failed")
    assert hook.call_count == 4
    refused = requests_mock.post("https://hooks.example/meta", status_code=410)
    assert notifier().deliver(notice())["webhook"] == "refused:410"
    assert refused.call_count == 1


def test_email_goes_to_the_tenants_admins_over_starttls(notice, fake_smtp):
    sender = Notifier(config_values(SMTP_HOST="smtp.example", SMTP_PORT=587, SMTP_USER="mailer",
                                    SMTP_PASSWORD="pw", SMTP_FROM="crm@example.com"), smtp_factory=fake_smtp)
    assert sender.deliver(notice()) == {"email": "delivered"}
    [(server, message)] = fake_smtp.sent
    assert server.tls and server.user == "mailer"
    assert server.context.verify_mode == ssl.CERT_REQUIRED and server.context.check_hostname
    assert message["To"] == "admin@acme.test" and "7 days" in message["Subject"]
    assert "2026-12-05" in message.get_content()
