"""`flask services ...`: keys for the CRM's other services."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from crm_meta.auth import tenancy
from crm_meta.infra.database import db
from crm_meta.infra.timestamps import iso
from crm_meta.internal import keys
from crm_meta.models import Tenant

services_cli = AppGroup("services", help="Keys for the CRM's other services (/internal/ API).")


def _tenant_ids(refs: tuple[str, ...]) -> list[int] | None:
    """The ids of the tenants named by slug (or id); None when none was named."""
    if not refs:
        return None
    ids = []
    for ref in refs:
        named = tenancy.reference(ref)
        column = Tenant.id if isinstance(named, int) else Tenant.slug
        tenant_id = db.session.scalar(db.select(Tenant.id).where(column == named)) if named else None
        if tenant_id is None:
            raise click.ClickException(f"no tenant {ref!r} (see `flask tenants create`)")
        ids.append(tenant_id)
    return ids


def _tenants_shown(tenant_ids: list[int] | None) -> str:
    if tenant_ids is None:
        return "all tenants (multi-tenant)"
    slugs = dict(db.session.execute(db.select(Tenant.id, Tenant.slug).where(Tenant.id.in_(tenant_ids))).all())
    return "tenants " + ",".join(slugs.get(i, f"#{i} (deleted)") for i in tenant_ids)


@services_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(keys.SCOPES),
              help="What the key may do; repeat for several.")
@click.option("--tenant", "tenants", multiple=True,
              help="Limit the key to this tenant (slug or id); repeat for several. "
                   "Without it the key opens every tenant.")
def services_create(name: str, scopes: tuple[str, ...], tenants: tuple[str, ...]):
    """Issue a key for service NAME and print it once."""
    try:
        issued = keys.create(name, list(scopes), tenant_ids=_tenant_ids(tenants))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(issued.key)
    click.echo(f"key for service {name} ({', '.join(issued.row.scopes)}; "
               f"{_tenants_shown(issued.row.tenant_ids)}); it is shown only now: "
               "store it in the service's secrets as Authorization: Bearer <key>", err=True)


@services_cli.command("list")
def services_list():
    """Every key: service, prefix, scopes, tenants, created, last used, revoked."""
    rows = keys.listing()
    if not rows:
        click.echo("no service keys (see `flask services create`)")
        return
    for row in rows:
        state = f"revoked {iso(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"{row.name}\t{row.prefix}…\t{','.join(row.scopes)}\t{_tenants_shown(row.tenant_ids)}"
                   f"\tcreated {iso(row.created_at)}"
                   f"\tlast used {iso(row.last_used_at) or 'never'}\t{state}")


@services_cli.command("revoke")
@click.argument("name")
def services_revoke(name: str):
    """Revoke service NAME's key at once."""
    count = keys.revoke(name)
    if not count:
        raise click.ClickException(f"service {name!r} has no active key")
    click.echo(f"revoked the key of service {name}")
