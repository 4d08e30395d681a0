"""Browser login and logout."""

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from crm_meta.auth import bp
from crm_meta.auth.forms import LoginForm
from crm_meta.auth.login import authenticate, failed_login_actor, remember_locale
from crm_meta.models import audit
from crm_meta.models.types import utcnow


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes to the hub."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("web.hub")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user, valid = authenticate(email, form.password.data)
        if not valid:
            actor = failed_login_actor(email, current_app.config["SECRET_KEY"])
            audit.record_now("login", actor=audit.Actor(actor, request.remote_addr),
                             tenant_id=user.tenant_id if user else None, outcome="failure")
            flash(_("Wrong email or password."), "error")
            return render_template("auth/login.html", form=form), 401
        lang = session.get("lang")
        session.clear()  # a fresh session on login: no fixation
        login_user(user)
        if lang:  # a language chosen on the login page carries over
            session["lang"] = user.locale = lang
        user.last_login_at = utcnow()
        audit.record_now("login", actor=audit.Actor(f"user:{user.id}", request.remote_addr),
                         tenant_id=user.tenant_id)
        return redirect(_safe_next(request.args.get("next")))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """POST only, with the form's CSRF token: a link or a cross-site GET never logs anyone out."""
    if current_user.is_authenticated:
        audit.record_now("logout", actor=audit.Actor(f"user:{current_user.id}", request.remote_addr),
                         tenant_id=current_user.tenant_id)
        logout_user()
    session.clear()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the interface language; remembered in the session and on the user."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
        if current_user.is_authenticated:
            remember_locale(current_user, code)
    return redirect(_safe_next(request.args.get("next")))
