"""The marketing hub and the connection wizard: thin views over the connection services."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from crm_meta.auth import binding
from crm_meta.auth.decorators import admin_required
from crm_meta.auth.principal import current_principal
from crm_meta.connect import flow, payloads
from crm_meta.http import params
from crm_meta.http.errors import AppError, to_app_error
from crm_meta.meta import app_health, connections
from crm_meta.meta.channels import Who
from crm_meta.meta.errors import DomainError, GraphError
from crm_meta.meta.status import missing_scopes
from crm_meta.meta.webhooks import watch
from crm_meta.runtime import now, runtime
from crm_meta.web import bp, channel_views, presenters
from crm_meta.web.forms import ConfirmForm, SelectAccountForm, StartForm
from crm_meta.web.messages import callback_error, translated

PERSONAL = "personal"


def _row():
    return runtime().store.for_tenant(current_principal().tenant.id)


def _flash_failure(exc: Exception) -> None:
    """A Graph or domain failure as a translated flash message (never a raw page)."""
    error = exc if isinstance(exc, AppError) else to_app_error(exc)
    flash(translated(error.message), "error")


@bp.get("/")
def index():
    return redirect(url_for("web.hub"))


@bp.get("/crm/marketing")
@login_required
def hub():
    principal = current_principal()
    row = _row()
    moment = now()
    payload = payloads.status_payload(row, moment, flow.required_scopes(), url_for("web.wizard"))
    banner = presenters.banner(row, payload, moment, is_admin=principal.is_admin)
    app_problem = (app_health.current(runtime().graph.credential) if principal.is_admin else None)
    webhooks_lost = watch.lost() if principal.is_admin and watch.enabled(current_app.config) else None
    return render_template("marketing/hub.html", banner=banner, now=moment,
                           is_admin=principal.is_admin, form=ConfirmForm(), app_problem=app_problem,
                           webhooks_lost=webhooks_lost,
                           channel_groups=channel_views.groups(row),
                           channel_troubles=channel_views.troubles(row),
                           discovery_running=channel_views.discovery_running(row))


# -- the wizard ----------------------------------------------------------------------------
@bp.get("/crm/marketing/meta/connect")
@login_required
def wizard():
    principal = current_principal()
    step = request.args.get("step")
    row = _row()
    error = callback_error(request.args.get("error"))
    if error or step not in {"select", "done"} or not principal.is_admin:
        return render_template("wizard/connect.html", step=1, error=error, row=row,
                               is_admin=principal.is_admin, form=StartForm(),
                               uses_login_config=bool(current_app.config["META_LOGIN_CONFIG_ID"]),
                               permissions=presenters.permissions(flow.required_scopes()))
    if row is None:
        flash(_("Connect Meta first: the connection was not found."), "error")
        return redirect(url_for("web.wizard"))
    if step == "done":
        if not row.selected_ad_account_id:
            return redirect(url_for("web.wizard", step="select"))
        return render_template("wizard/done.html", step=4, row=row, now=now(),
                               account=_selected_account(row),
                               business_name=presenters.business_name(row, row.selected_business_id))
    return render_template("wizard/select.html", step=3, row=row, form=SelectAccountForm(),
                           start_form=StartForm(), **_selection(row))


def _selected_account(row) -> dict | None:
    return next((a for a in row.all_ad_accounts() if a["id"] == row.selected_ad_account_id), None)


def _selection(row) -> dict:
    """Step 3's lists: businesses, the chosen one's ad accounts (searched, one page of them)."""
    businesses = [{"id": b["id"], "name": b["name"], "count": len(b["ad_accounts"])}
                  for b in row.business_managers or []]
    personal = row.personal_ad_accounts or []
    if personal:
        businesses.append({"id": PERSONAL, "name": _("Personal ad accounts"), "count": len(personal)})
    known = {b["id"] for b in businesses}
    chosen = request.args.get("business")
    if chosen not in known:
        chosen = _earlier_business(row, known)
        if chosen is None and len(businesses) == 1:
            chosen = businesses[0]["id"]
    accounts: list[dict] = []
    if chosen == PERSONAL:
        accounts = personal
    elif chosen:
        accounts = connections.accounts(row, chosen)
    query = (request.args.get("q") or "").strip()[:100]
    found = presenters.search(accounts, query)
    number = request.args.get("page", type=int)
    if number is None:
        number = presenters.page_of(found, row.selected_ad_account_id)
    page = presenters.paginate(found, number)
    return {"businesses": businesses, "business": chosen, "query": query, "page": page,
            "chosen_name": next((b["name"] for b in businesses if b["id"] == chosen), None),
            "missing": presenters.permissions(missing_scopes(row, flow.required_scopes())),
            "account_status": presenters.account_status}


def _earlier_business(row, known: set[str]) -> str | None:
    if not row.selected_ad_account_id:
        return None
    if row.selected_business_id in known:
        return row.selected_business_id
    if any(a["id"] == row.selected_ad_account_id for a in row.personal_ad_accounts or []):
        return PERSONAL if PERSONAL in known else None
    return None


@bp.post("/crm/marketing/meta/connect/start")
@login_required
@admin_required
def connect_start():
    """Step 2: send the browser to Meta's consent page, bound to this browser."""
    form = StartForm()
    rerequest = params.flag(form.rerequest.data)
    try:
        started, secret = flow.begin(current_principal(), rerequest=rerequest)
    except (AppError, DomainError, GraphError) as exc:
        _flash_failure(exc)
        return redirect(url_for("web.wizard"))
    return binding.attach(redirect(started.auth_url, code=303), secret)


@bp.post("/crm/marketing/meta/connect/select")
@login_required
@admin_required
def connect_select():
    """Step 3 → 4: keep the chosen ad account."""
    form = SelectAccountForm()
    business = form.business_id.data or None
    back = url_for("web.wizard", step="select", business=business)
    if not form.validate_on_submit():
        flash(_("Choose an ad account from the list."), "error")
        return redirect(back)
    row = _row()
    if row is None:
        flash(_("Connect Meta first: the connection was not found."), "error")
        return redirect(url_for("web.wizard"))
    try:
        connections.select_account(row=row, account_id=form.account_id.data,
                                   business_id=None if business == PERSONAL else business,
                                   who=Who(actor=current_principal().actor, ip=request.remote_addr))
    except DomainError:
        flash(_("That ad account is not one this Meta connection can use. Choose one from "
                "the list."), "error")
        return redirect(back)
    return redirect(url_for("web.wizard", step="done"))


# -- hub actions ---------------------------------------------------------------------------
@bp.post("/crm/marketing/meta/test")
@login_required
def test_connection():
    """A live check with Meta; members may run it too (it changes nothing they choose)."""
    ConfirmForm()  # CSRF is checked globally; the form documents the intent
    row = _row()
    if row is None:
        flash(_("Meta is not connected."), "error")
        return redirect(url_for("web.hub"))
    try:
        result = flow.test_connection(row)
    except (AppError, DomainError, GraphError) as exc:
        _flash_failure(exc)
        return redirect(url_for("web.hub"))
    if result["valid"]:
        flash(_("Meta confirmed that the connection works."), "success")
    else:
        flash(_("Meta says this connection no longer works. Reconnect to continue."), "error")
    return redirect(url_for("web.hub"))


@bp.get("/crm/marketing/meta/disconnect")
@login_required
@admin_required
def disconnect_confirm():
    """The confirmation step (works without JavaScript)."""
    row = _row()
    if row is None:
        return redirect(url_for("web.hub"))
    return render_template("marketing/disconnect.html", row=row, form=ConfirmForm(),
                           business_name=presenters.business_name(row, row.selected_business_id))


@bp.post("/crm/marketing/meta/disconnect")
@login_required
@admin_required
def disconnect():
    result = flow.disconnect(current_principal())
    if result.revoked_at_meta:
        flash(_("Meta has been disconnected and the CRM's access was removed at Meta."), "success")
    else:
        flash(_("Meta has been disconnected from the CRM."), "success")
    return redirect(url_for("web.hub"))
