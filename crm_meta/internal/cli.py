"""`flask services ...`: keys for the CRM's other services."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from crm_meta.infra.timestamps import iso
from crm_meta.internal import keys

services_cli = AppGroup("services", help="Keys for the CRM's other services (/internal/ API).")


@services_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(keys.SCOPES),
              help="What the key may do; repeat for several.")
def services_create(name: str, scopes: tuple[str, ...]):
    """Issue a key for service NAME and print it once."""
    try:
        issued = keys.create(name, list(scopes))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(issued.key)
    click.echo(f"key for service {name} ({', '.join(issued.row.scopes)}); it is shown only now: "
               "store it in the service's secrets as Authorization: Bearer <key>", err=True)


@services_cli.command("list")
def services_list():
    """Every key: service, prefix, scopes, created, last used, revoked."""
    rows = keys.listing()
    if not rows:
        click.echo("no service keys (see `flask services create`)")
        return
    for row in rows:
        state = f"revoked {iso(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(f"{row.name}\t{row.prefix}…\t{','.join(row.scopes)}\tcreated {iso(row.created_at)}"
                   f"\tlast used {iso(row.last_used_at) or 'never'}\t{state}")


@services_cli.command("revoke")
@click.argument("name")
def services_revoke(name: str):
    """Revoke service NAME's key at once."""
    count = keys.revoke(name)
    if not count:
        raise click.ClickException(f"service {name!r} has no active key")
    click.echo(f"revoked the key of service {name}")
