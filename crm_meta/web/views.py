"""Hub and wizard pages (placeholder views; the wizard work fills them in)."""

from flask import render_template
from flask_login import login_required

from crm_meta.web import bp


@bp.get("/")
def index():
    from flask import redirect, url_for

    return redirect(url_for("web.hub"))


@bp.get("/crm/marketing")
@login_required
def hub():
    return render_template("marketing/hub.html")


@bp.get("/crm/marketing/meta/connect")
@login_required
def wizard():
    return render_template("wizard/connect.html")
