"""The audit page: a tenant's admins see their own trail (who, what, when, outcome), filtered
and paged; never a secret, an IP address or another tenant's event."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from crm_meta.auth.decorators import admin_required
from crm_meta.auth.principal import current_principal
from crm_meta.models import audit
from crm_meta.web import bp

PER_PAGE = 25
# What each recorded action means, in words (an unknown action shows its own name).
ACTIONS = {
    "login": _l("Signed in"), "logout": _l("Signed out"),
    "meta.connect": _l("Connected Meta"), "meta.disconnect": _l("Disconnected Meta"),
    "meta.select_account": _l("Chose the ad account"),
    "meta.credentials.read": _l("A CRM service read the Meta access"),
    "meta.keepalive.extend": _l("Meta access extended"),
    "meta.keepalive.status": _l("Connection status changed"),
    "meta.deauthorize": _l("Removed at Meta"), "meta.data_deletion": _l("Data deletion at Meta's request"),
    "meta.notify.delivery": _l("Notice delivered"), "meta.notify.gave_up": _l("Notice not delivered"),
    "service_key.refused": _l("A CRM service was refused"),
}
OUTCOMES = {"success": _l("Success"), "failure": _l("Failure"), "refused": _l("Refused"),
            "denied": _l("Cancelled")}


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= 10**6 else 1


@bp.get("/crm/marketing/audit")
@login_required
@admin_required
def audit_trail():
    tenant_id = current_principal().tenant.id
    actions = audit.tenant_actions(tenant_id)
    action = request.args.get("action") if request.args.get("action") in actions else None
    outcome = request.args.get("outcome") if request.args.get("outcome") in OUTCOMES else None
    page = _page_number()
    rows, total = audit.tenant_events(tenant_id, action=action, outcomes=[outcome] if outcome else None,
                                      limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))

    def link(number: int) -> str:
        return url_for("web.audit_trail", page=number, action=action, outcome=outcome)

    return render_template("marketing/audit.html", rows=rows, total=total, page=page, pages=pages,
                           actions=actions, action=action, outcome=outcome, labels=ACTIONS,
                           outcomes=OUTCOMES, previous=link(page - 1) if page > 1 else None,
                           next=link(page + 1) if page < pages else None)
