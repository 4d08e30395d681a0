"""`flask gateway ...`: list, rotate and revoke the services' gateway tokens (never printed)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from crm_meta.auth import gateway_tokens as tokens
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.models import Tenant

gateway_cli = AppGroup("gateway", help="Gateway tokens (cmg_...) of the drop-in Graph endpoint.")


def _tenant_id(ref: str) -> int:
    found = db.session.scalar(db.select(Tenant.id).where(
        Tenant.id == int(ref) if ref.isdigit() else Tenant.slug == ref))
    if found is None:
        raise click.ClickException(f"no tenant {ref!r}")
    return found


@gateway_cli.command("list")
def gateway_list():
    """Every gateway token: tenant, service, prefix, created, last used, revoked."""
    rows = tokens.listing()
    if not rows:
        click.echo("no gateway tokens (a service gets one from /credentials?format=crm-ventas)")
    for slug, service, row in rows:
        state = f"revoked {iso(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"{slug}\t{service}\t{row.prefix}…\tcreated {iso(row.created_at)}"
                   f"\tlast used {iso(row.last_used_at) or 'never'}\t{state}")


@gateway_cli.command("rotate")
@click.argument("tenant")
@click.option("--service", help="Only this service's token (default: every service's).")
def gateway_rotate(tenant: str, service: str | None):
    """Replace TENANT's gateway tokens; services read the new one from the credentials endpoint."""
    prefixes = tokens.rotate(_tenant_id(tenant), current_app.config["SECRET_KEY"], service)
    if not prefixes:
        raise click.ClickException(f"tenant {tenant!r} has no active gateway token")
    click.echo(f"rotated {len(prefixes)} token(s): {', '.join(p + '…' for p in prefixes)}")


@gateway_cli.command("revoke")
@click.argument("tenant")
@click.option("--service", help="Only this service's token (default: every service's).")
def gateway_revoke(tenant: str, service: str | None):
    """Refuse TENANT's gateway tokens at once (a later credentials read issues a new one)."""
    count = tokens.revoke(_tenant_id(tenant), service)
    if not count:
        raise click.ClickException(f"tenant {tenant!r} has no active gateway token")
    click.echo(f"revoked {count} gateway token(s) of tenant {tenant}")
