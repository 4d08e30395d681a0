"""Meta's webhooks, from the signed delivery to the CRM (no HTTP here; the views are in
crm_meta.webhooks).

signature (X-Hub-Signature-256 over the raw bytes), inbox (store before the 200; route later),
events (a delivery's entries as events, each with its de-duplication key), routing (the one
asset -> tenant lookup), leads (reading a lead, lead access, backfill), forward (events to the
tenant's endpoint, Standard Webhooks signed, through the outbox), worker (this process's
background pass: inbox, then forwarding).
"""
