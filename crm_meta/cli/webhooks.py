"""`flask webhooks ...` (the CRM's endpoint, the forwarded events, parked entries) and
`flask leads backfill`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import update

from crm_meta.infra.database import db
from crm_meta.infra.upsert import insert_ignore
from crm_meta.meta.webhooks import events, forward, inbox, leads
from crm_meta.models import NotificationOutbox, Tenant, WebhookParked
from crm_meta.notify.outbox import EVENT_PREFIX
from crm_meta.runtime import runtime

webhooks_cli = AppGroup("webhooks", help="Meta's webhooks: the CRM's endpoint, events, parked entries.")
leads_cli = AppGroup("leads", help="Leads from Meta's Lead Ads.")


def _tenant(ref: str) -> Tenant:
    query = db.select(Tenant).where(Tenant.id == int(ref)) if ref.isdigit() else \
        db.select(Tenant).where(Tenant.slug == ref)
    tenant = db.session.scalar(query)
    if tenant is None:
        raise click.ClickException(f"no tenant {ref!r}")
    return tenant


def _since(value: str) -> datetime:
    """An ISO date/time (UTC when no zone) or a span back from now: 36h, 7d."""
    if value[-1:] in ("h", "d") and value[:-1].isdigit():
        hours = int(value[:-1]) * (24 if value[-1] == "d" else 1)
        return runtime().clock.now() - timedelta(hours=hours)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO date/time such as 2026-12-05T08:00, or 36h / 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@webhooks_cli.command("endpoint")
@click.option("--tenant", "tenant_ref", required=True, help="Slug or id.")
@click.option("--url", required=True, help="Where the CRM receives this tenant's events.")
def endpoint(tenant_ref: str, url: str):
    """Set a tenant's event endpoint; prints its new Standard Webhooks secret once."""
    if not url.startswith(("https://", "http://")):
        raise click.BadParameter("an http(s) URL")
    tenant = _tenant(tenant_ref)
    secret = forward.new_secret()
    forward.set_endpoint(runtime().cipher, tenant.id, url, secret)
    db.session.commit()
    click.echo(secret)


@webhooks_cli.command("list")
@click.option("--tenant", "tenant_ref", help="Slug or id.")
@click.option("--state", type=click.Choice(["pending", "dead", "delivered", "all"]), default="all",
              show_default=True)
@click.option("--limit", type=int, default=50, show_default=True)
def list_events(tenant_ref: str | None, state: str, limit: int):
    """Events forwarded (or to be) to the CRM: id, tenant, type, attempts, state, last outcome."""
    query = db.select(NotificationOutbox).where(NotificationOutbox.event.startswith(EVENT_PREFIX))
    if tenant_ref:
        query = query.where(NotificationOutbox.tenant_id == _tenant(tenant_ref).id)
    undelivered, due = NotificationOutbox.delivered_at.is_(None), NotificationOutbox.next_attempt_at
    if state == "pending":
        query = query.where(undelivered, due.is_not(None))
    elif state == "dead":
        query = query.where(undelivered, due.is_(None))
    elif state == "delivered":
        query = query.where(NotificationOutbox.delivered_at.is_not(None))
    rows = db.session.scalars(query.order_by(NotificationOutbox.created_at.desc()).limit(limit)).all()
    for row in rows:
        shown = "delivered" if row.delivered_at else "dead" if row.next_attempt_at is None else "pending"
        click.echo(f"{row.id}  tenant={row.tenant_id}  {row.payload.get('type')}  attempts={row.attempts}  "
                   f"{shown}  {row.last_outcome or ''}".rstrip())
    click.echo(f"{len(rows)} event(s)")


@webhooks_cli.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--dead", is_flag=True, help="Every dead-lettered event (of --tenant).")
@click.option("--tenant", "tenant_ref", help="Slug or id.")
def replay(ids: tuple[str, ...], dead: bool, tenant_ref: str | None):
    """Send events again now (the same webhook-id: the CRM drops what it already has)."""
    if not ids and not dead:
        raise click.UsageError("name event ids, or --dead")
    now = runtime().clock.now()
    statement = update(NotificationOutbox).where(NotificationOutbox.event.startswith(EVENT_PREFIX))
    if ids:
        statement = statement.where(NotificationOutbox.id.in_(ids))
    if dead:
        statement = statement.where(NotificationOutbox.delivered_at.is_(None),
                                    NotificationOutbox.next_attempt_at.is_(None))
    if tenant_ref:
        statement = statement.where(NotificationOutbox.tenant_id == _tenant(tenant_ref).id)
    # created_at restarts the 24-hour window: a replayed event gets its retries again.
    result = db.session.execute(statement.values(next_attempt_at=now, delivered_at=None, created_at=now,
                                                 attempts=0, claimed_by=None)
                                .execution_options(synchronize_session=False))
    db.session.commit()
    runtime().webhooks.wake()
    click.echo(f"{result.rowcount} event(s) queued again")


@webhooks_cli.command("parked")
@click.option("--reroute", is_flag=True, help="Route them again (after a tenant connected the asset).")
def parked(reroute: bool):
    """Entries no tenant owns: object, asset, field, when."""
    if reroute:
        counts = inbox.reroute_parked(router=runtime().webhooks.router, now=runtime().clock.now())
        runtime().webhooks.wake()
        click.echo(leads.summary(counts))
        return
    rows = db.session.scalars(db.select(WebhookParked).where(WebhookParked.rerouted_at.is_(None))
                              .order_by(WebhookParked.parked_at)).all()
    for row in rows:
        click.echo(f"{row.parked_at.isoformat()}  {row.object}  {row.asset_kind}={row.asset_id}  {row.field}")
    click.echo(f"{len(rows)} parked entr{'y' if len(rows) == 1 else 'ies'}")


@leads_cli.command("backfill")
@click.option("--tenant", "tenant_ref", required=True, help="Slug or id.")
@click.option("--since", "since", required=True, help="ISO date/time, or 36h / 7d back from now.")
def backfill(tenant_ref: str, since: str):
    """Read the leads of the tenant's forms since a moment; queue those not forwarded yet."""
    tenant, moment, parts = _tenant(tenant_ref), _since(since), runtime()
    row = parts.store.for_tenant(tenant.id)
    if row is None:
        raise click.ClickException(f"tenant {tenant.slug} has no Meta connection")
    pages = {str(p["id"]) for p in row.pages or []}
    pages |= {c.asset_id for c in row.channels if c.asset_type == "page"}
    tokens = {page: forward.lead_token(parts.store, row, page) for page in sorted(pages)}
    db.session.rollback()
    found = leads.backfill(parts.graph, tokens, moment)
    now = parts.clock.now()
    leads_found = [events.Event("lead", f"leadgen:{item['leadgen_id']}", "", "", (), item) for item in found]
    rows = [inbox.outbox_row(tenant.id, event, now) for event in leads_found]
    queued = insert_ignore(NotificationOutbox, rows)
    db.session.commit()
    parts.webhooks.wake()
    click.echo(f"{len(found)} lead(s) since {moment.isoformat()}; {queued} queued, "
               f"{len(found) - queued} already forwarded or queued")

