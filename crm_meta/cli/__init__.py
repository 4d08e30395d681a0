"""Command line: `flask --app wsgi <group> <command>`."""

from __future__ import annotations

import json
import re

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from crm_meta import jobs
from crm_meta.auth.principal import mint_jwt
from crm_meta.cli.refresh import refresh_command
from crm_meta.cli.webhooks import leads_cli, webhooks_cli
from crm_meta.gateway.cli import gateway_cli
from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.internal.cli import services_cli
from crm_meta.meta import doctor
from crm_meta.meta.webhooks import subscription
from crm_meta.models import ROLES, Tenant, User
from crm_meta.models.tenant import slug_problem
from crm_meta.runtime import runtime
from meta_sandbox import run_standalone

COMMON_PASSWORDS = {"password", "password1", "123456789", "1234567890", "qwertyuiop", "letmein123"}
DEMO_EMAIL = "admin@demo.test"
DEMO_PASSWORD = "demo-admin-2026"  # noqa: S105  (local demo only; printed by `demo seed`)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63] or "tenant"


def password_problem(password: str) -> str | None:
    """Why a password is too weak, or None."""
    if len(password) < 10:
        return "at least 10 characters"
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 5:
        return "not a common or repetitive password"
    return None


def tenant_by_slug(slug: str) -> Tenant:
    tenant = db.session.scalar(db.select(Tenant).filter_by(slug=slug))
    if tenant is None:
        raise click.ClickException(f"no tenant with slug {slug!r} (see `flask tenants create`)")
    return tenant


def create_tenant(name: str, slug: str | None) -> Tenant:
    name = name.strip()
    if not name:
        raise click.ClickException("NAME must not be blank")
    slug = slug or slugify(name)
    problem = slug_problem(slug)
    if problem:
        raise click.ClickException(f"slug {slug!r} {problem}; choose one with --slug")
    if db.session.scalar(db.select(Tenant).filter_by(slug=slug)):
        raise click.ClickException(f"a tenant with slug {slug!r} already exists")
    tenant = Tenant(name=name, slug=slug)
    db.session.add(tenant)
    db.session.commit()
    return tenant


def create_user(email: str, tenant: Tenant, role: str, password: str) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise click.ClickException(f"{email!r} is not an email address")
    if db.session.scalar(db.select(User).filter_by(email=email)):
        raise click.ClickException(f"a user with email {email!r} already exists")
    problem = password_problem(password)
    if problem:
        raise click.ClickException(f"weak password: use {problem}")
    user = User(email=email, tenant_id=tenant.id, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


tenants_cli = AppGroup("tenants", help="Manage tenants (companies using the CRM).")
users_cli = AppGroup("users", help="Manage users who log in to the pages.")
demo_cli = AppGroup("demo", help="Local demo data.")
jwt_cli = AppGroup("jwt", help="API bearer tokens.")
meta_cli = AppGroup("meta", help="The Meta connection: sandbox, keep-alive and doctor.")
crypto_cli = AppGroup("crypto", help="Encryption of stored tokens.")
jobs_cli = AppGroup("jobs", help="The scheduled jobs (keep-alive sweep, notification outbox).")


@tenants_cli.command("create")
@click.argument("name")
@click.option("--slug", help="URL-safe identifier; derived from NAME when omitted.")
def tenants_create(name: str, slug: str | None):
    """Add a tenant called NAME."""
    tenant = create_tenant(name, slug)
    click.echo(f"tenant {tenant.slug} created (id {tenant.id})")


@users_cli.command("create")
@click.argument("email")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the user's tenant.")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters; prompted for when omitted.")
def users_create(email: str, tenant_slug: str, role: str, password: str):
    """Add a user with EMAIL to a tenant."""
    user = create_user(email, tenant_by_slug(tenant_slug), role, password)
    click.echo(f"user {user.email} ({user.role}) created in tenant {tenant_slug}")


@demo_cli.command("seed")
def demo_seed():
    """Create a demo tenant and admin (idempotent) and print how to log in."""
    tenant = db.session.scalar(db.select(Tenant).filter_by(slug="demo")) or create_tenant(
        "Demo Ventas", "demo")
    if not db.session.scalar(db.select(User).filter_by(email=DEMO_EMAIL)):
        create_user(DEMO_EMAIL, tenant, "admin", DEMO_PASSWORD)
    base = current_app.config["API_BASE_URL"] or "http://localhost:8000"
    click.echo(f"Log in at {base}/login as {DEMO_EMAIL} with password {DEMO_PASSWORD}")


@jwt_cli.command("mint")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the token's tenant.")
@click.option("--sub", required=True, help="The user id the token speaks for.")
@click.option("--role", default="admin", show_default=True, help="Role claim (admin, ceo, member...).")
@click.option("--ttl", type=click.IntRange(60, 30 * 24 * 3600), default=3600, show_default=True,
              help="Lifetime in seconds.")
def jwt_mint(tenant_slug: str, sub: str, role: str, ttl: int):
    """Print an HS256 bearer token for the API."""
    tenant = tenant_by_slug(tenant_slug)
    click.echo(mint_jwt(current_app.config["JWT_SECRET_KEY"], tenant_id=tenant.id, sub=sub,
                        role=role, ttl=ttl))


@meta_cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
def meta_sandbox(host: str, port: int):
    """Run the Meta sandbox (emulated login dialog and Graph API) on its own."""
    config = current_app.config
    if config["APP_ENV"] == "production":
        raise click.ClickException("the Meta sandbox never runs with APP_ENV=production")
    run_standalone(host, port, config["META_APP_ID"], config["META_APP_SECRET"],
                   config["META_REDIRECT_URI"], control_token=config["SANDBOX_CONTROL_TOKEN"])


@meta_cli.command("refresh")
@click.option("--tenant", "tenant_slug", help="Only this tenant's connection.")
@click.option("--dry-run", is_flag=True, help="Check and report; change nothing.")
def meta_refresh(tenant_slug: str | None, dry_run: bool):
    """Check every connection (or one tenant's) now, due or not."""
    tenant = tenant_by_slug(tenant_slug) if tenant_slug else None
    refresh_command(current_app._get_current_object(), tenant=tenant, dry_run=dry_run)


@meta_cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
@click.option("--subscribe", is_flag=True,
              help="Make the app's Page leadgen webhook subscription if missing.")
def meta_doctor(as_json: bool, subscribe: bool):
    """Check the configured Meta app before going live (exit 0: all passed)."""
    checks = doctor.run(runtime().graph, current_app.config)
    config = current_app.config
    if config["META_WEBHOOKS_ENABLED"] and config["META_VERIFY_TOKEN"] and checks[0].ok:
        checks.append(subscription.check(runtime().graph, current_app.config, subscribe=subscribe))
    if as_json:
        click.echo(json.dumps(doctor.report(checks), indent=2))
    else:
        for check in checks:
            click.echo(check.line())
        failed = sum(not c.ok for c in checks)
        click.echo("all checks passed" if not failed else f"{failed} check(s) failed")
    if not all(c.ok for c in checks):
        raise SystemExit(1)


@crypto_cli.command("rotate")
@click.option("--wait", type=click.FloatRange(0, 3600), default=60, show_default=True,
              help="Seconds to keep retrying tokens that other sessions hold locked.")
def crypto_rotate(wait: float):
    """Re-encrypt every stored token with the current ENCRYPTION_KEY."""
    store = runtime().store
    try:
        count, left = store.rotate_all(wait)
    except CryptoError as exc:
        raise click.ClickException(
            f"{exc}; add the old key to ENCRYPTION_KEYS_PREVIOUS and run again") from None
    kid = store.cipher.current.kid
    if left:
        # Never a success while a row still needs an old key: dropping it would strand them.
        slugs = dict(db.session.execute(db.select(Tenant.id, Tenant.slug).where(Tenant.id.in_(left))).all())
        names = ", ".join(f"{slugs.get(tenant_id, '?')} (id {tenant_id})" for tenant_id in left)
        raise click.ClickException(
            f"re-encrypted {count} token(s) with key {kid}, but {len(left)} still use an older key "
            f"(held by another session for {wait:g}s): {names}; run again, and keep the old key "
            "in ENCRYPTION_KEYS_PREVIOUS until this reports success")
    click.echo(f"re-encrypted {count} token(s) with key {kid}")


@jobs_cli.command("run")
def jobs_run():
    """Run the scheduled jobs in this process until it is stopped (a dedicated job process)."""
    app = current_app._get_current_object()
    click.echo(f"running jobs {', '.join(spec.id for spec in jobs.JOBS)}; stop with Ctrl-C or SIGTERM")
    jobs.run_forever(app)


def register_cli(app: Flask) -> None:
    for group in (tenants_cli, users_cli, demo_cli, jwt_cli, meta_cli, crypto_cli, services_cli, gateway_cli,
                  jobs_cli, webhooks_cli, leads_cli):
        app.cli.add_command(group)
