"""The hub's channels: the Pages, Instagram accounts and WhatsApp numbers of the connection, and
an admin's choice of them (the same service as CRM Ventas' panel)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required

from crm_meta.auth.decorators import admin_required
from crm_meta.auth.principal import current_principal
from crm_meta.connect import flow
from crm_meta.http.errors import AppError, to_app_error
from crm_meta.meta import channels
from crm_meta.meta.errors import DomainError, GraphError
from crm_meta.runtime import runtime
from crm_meta.web import bp
from crm_meta.web.forms import ConfirmForm
from crm_meta.web.messages import translated

GROUPS = (("page", "Facebook Pages"), ("instagram_account", "Instagram"),
          ("waba", "WhatsApp accounts"), ("phone_number", "WhatsApp numbers"))


def groups(row) -> list[tuple[str, list]]:
    """The channels by kind, in the panel's order (empty kinds left out)."""
    found = []
    for kind, title in GROUPS:
        items = [c for c in (row.channels if row is not None else []) if c.asset_type == kind]
        if items:
            found.append((title, items))
    return found


def discovery_running(row) -> bool:
    """A connect's discovery still being finished by the discovery job: the list is partial."""
    return row is not None and row.discovery_pending_since is not None


def troubles(row) -> list:
    return [c for c in (row.channels if row is not None else []) if c.active and c.trouble]


@bp.post("/crm/marketing/meta/channels")
@login_required
@admin_required
def choose_channels():
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(_("The form expired; reload the page and try again"), "error")
        return redirect(url_for("web.hub"))
    ids = [i for i in dict.fromkeys(request.form.getlist("asset_id")) if 0 < len(i) <= 64]
    row = runtime().store.for_tenant(current_principal().tenant.id)
    if row is None:
        flash(_("Connect Meta first: the connection was not found."), "error")
        return redirect(url_for("web.hub"))
    if not ids:
        flash(_("Choose at least one channel."), "error")
        return redirect(url_for("web.hub"))
    who = channels.Who(actor=current_principal().actor, ip=request.remote_addr)
    try:
        result = channels.select(flow.parts(), row, ids, who)
    except (DomainError, GraphError) as exc:
        error = exc if isinstance(exc, AppError) else to_app_error(exc)
        flash(translated(error.message), "error")
        return redirect(url_for("web.hub"))
    count = len(result["activated"])
    flash(ngettext("%(num)s channel is active.", "%(num)s channels are active.", count), "success")
    left_out = sorted({f for s in result["subscriptions"] for f in s["left_out_fields"]})
    if left_out:
        flash(_("Some webhooks were left out because Meta's grant lacks their permission: %(fields)s",
                fields=", ".join(left_out)), "warning")
    if any(s["error"] not in (None, "permission_missing") for s in result["subscriptions"]):
        flash(_("Meta refused a webhook subscription; try again, or reconnect Meta."), "error")
    return redirect(url_for("web.hub"))
