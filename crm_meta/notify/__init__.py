"""Tenant notifications from the keep-alive: a signed webhook and an optional e-mail, at least once.

The decision to warn (once per deadline) is taken by crm_meta.meta.keepalive.verdicts, which writes the
notice to the outbox (crm_meta.models.NotificationOutbox) in the same transaction as the check.
Delivery comes after, from the outbox: the sweep only wakes this process's sender thread (so a
slow or dead receiver never holds up a sweep), and the `meta.notify.outbox` job delivers
whatever is still due, in whichever process runs next. A sender claims a row with a
conditional UPDATE that moves `next_attempt_at` ahead by a lease, so two processes never send
the same row at once and a killed sender's rows come back after the lease. Receivers drop
duplicates by the notice id in `webhook-id` (Standard Webhooks), the same across retries.

The outbox also carries Meta's events to the CRM (rows whose event starts with `meta.`, sent
by crm_meta.meta.webhooks.forward); each sender takes only its own rows.

Modules: notices (what a notice says), signing (Standard Webhooks signatures), channels (webhook, e-mail
and the sender thread), outbox (queue, claim, deliver, retry, prune, dispatch).
"""

from crm_meta.notify.channels import Notifier, channels_configured
from crm_meta.notify.notices import Notice
from crm_meta.notify.outbox import RetryPolicy, deliver_due, dispatch, outbox_rows, prune, queue, to_notice
from crm_meta.notify.signing import SIGNATURE_HEADER, signed_headers, verify, webhook

__all__ = ["SIGNATURE_HEADER", "Notice", "Notifier", "RetryPolicy", "channels_configured", "deliver_due",
           "dispatch", "outbox_rows", "prune", "queue", "signed_headers", "to_notice", "verify",
           "webhook"]
