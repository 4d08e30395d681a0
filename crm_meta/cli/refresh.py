"""`flask meta refresh`: check every connection (or one tenant's) now, with a summary."""

from __future__ import annotations

import click
from flask import Flask

from crm_meta.infra.database import db
from crm_meta.meta.keepalive.sweep import Scope, run_sweep
from crm_meta.meta.keepalive.verdicts import Outcome
from crm_meta.models import MetaConnection, Tenant
from crm_meta.runtime import of

SUMMARY_COLUMNS = ("checked", "extended", "warned", "failed", "skipped")


def refresh_command(app: Flask, *, tenant: Tenant | None, dry_run: bool) -> dict:
    """Check every connection (or one tenant's) now, due or not; progress bar and summary."""
    tenant_slug = tenant.slug if tenant else None
    query = db.select(MetaConnection.id).order_by(MetaConnection.id)
    if tenant is not None:
        query = query.filter_by(tenant_id=tenant.id)
    ids = list(db.session.scalars(query))
    db.session.rollback()
    if not ids:
        click.echo("no Meta connections to check" + (f" for tenant {tenant_slug}" if tenant_slug else ""))
        return dict.fromkeys(SUMMARY_COLUMNS, 0)
    label = "Checking connections" + (" (dry run: nothing is changed)" if dry_run else "")
    with click.progressbar(length=len(ids), label=label, show_pos=True) as bar:
        report = run_sweep(app, of(app), Scope(row_ids=ids, forced=True, dry_run=dry_run),
                           on_done=lambda outcome: bar.update(1))
    counts = report.counts()
    click.echo(format_table(counts, would=dry_run))
    notable = [o for o in report.outcomes if o.failed or o.status_before != o.status_after
               or o.kind in ("busy", "throttled", "lost", "deferred")]
    slugs = dict(db.session.execute(db.select(Tenant.id, Tenant.slug).where(
        Tenant.id.in_({o.tenant_id for o in notable if o.tenant_id}))).all()) if notable else {}
    for outcome in notable:
        click.echo(describe(outcome, slugs.get(outcome.tenant_id)))
    return counts


def format_table(counts: dict, *, would: bool = False) -> str:
    """A small fixed-width summary table."""
    headers = [("would warn" if would and c == "warned" else c) for c in SUMMARY_COLUMNS]
    widths = [max(len(h), len(str(counts.get(c, 0)))) for h, c in zip(headers, SUMMARY_COLUMNS,
                                                                        strict=True)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    head = "|" + "|".join(f" {h:<{w}} " for h, w in zip(headers, widths, strict=True)) + "|"
    body = "|" + "|".join(f" {counts.get(c, 0):>{w}} " for c, w in zip(SUMMARY_COLUMNS, widths,
                                                                     strict=True)) + "|"
    return "\n".join([line, head, line, body, line])


KIND_WORDS = {
    "valid": "checked", "invalid": "token invalid", "token_error": "token error",
    "throttled_now": "throttled by Meta", "transient": "Meta unavailable", "error": "Meta refused",
    "crashed": "check crashed", "busy": "being checked elsewhere", "throttled": "skipped, throttled",
    "deferred": "deferred, app throttled", "lost": "changed meanwhile", "skipped": "skipped",
    "app_misconfigured": "the Meta app is misconfigured (checks stopped; see `flask meta doctor`)",
}


def describe(outcome: Outcome, slug: str | None = None) -> str:
    """One line about a connection worth the operator's attention (never a token)."""
    who = slug or (f"tenant {outcome.tenant_id}" if outcome.tenant_id else f"connection {outcome.row_id}")
    moved = (f"{outcome.status_before} -> {outcome.status_after}"
             if outcome.status_before != outcome.status_after else outcome.status_after or "")
    detail = f" ({outcome.error})" if outcome.error else ""
    return f"  {who}: {KIND_WORDS.get(outcome.kind, outcome.kind)}; {moved}{detail}".rstrip("; ")
