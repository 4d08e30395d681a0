"""Browser login and logout: sessions, audit, open redirects, fixation, CSRF, rate limit, hashing."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import text

from crm_meta.infra.database import db
from crm_meta.models import User
from tests.helpers.database import audit_events, raw_rows
from tests.helpers.responses import assert_envelope, csrf_token_from
from tests.helpers.users import PASSWORD, AuthActions, bearer

HUB = "/crm/marketing"


def stays_on_site(location: str) -> bool:
    """Would a browser stay on this site? (Browsers read `\\` as `/` and drop tabs/newlines.)"""
    seen = re.sub(r"[\t\r\n]", "", location).replace("\\", "/")
    return seen.startswith("/") and not seen.startswith("//")


def logged_in_user_id(client) -> str | None:
    with client.session_transaction() as sess:
        return sess.get("_user_id")


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="email"' in response.data and b'name="password"' in response.data


def test_login_success_redirects_to_hub_sets_session_and_audits(app, client, auth, tenant):
    response = auth.login(tenant.admin_email)
    assert response.status_code == 302
    assert response.headers["Location"] == HUB
    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(email=tenant.admin_email))
        user_id = user.id
        assert user.last_login_at is not None
    assert logged_in_user_id(client) == str(user_id)
    assert client.get(HUB).status_code == 200
    [event] = audit_events(app, "login")
    assert (event.outcome, event.actor, event.tenant_id, event.ip) == (
        "success", f"user:{user_id}", tenant.tenant_id, "127.0.0.1")


def test_login_email_is_case_insensitive(client, auth, tenant):
    response = auth.login(tenant.admin_email.upper())
    assert response.status_code == 302
    assert logged_in_user_id(client) is not None


def test_wrong_password_is_401_audited_and_gives_no_session(app, client, auth, tenant):
    response = auth.login(tenant.admin_email, "not the password")
    assert response.status_code == 401
    assert response.mimetype == "text/html"
    assert b"Wrong email or password" in response.data
    assert logged_in_user_id(client) is None
    assert client.get(HUB).status_code == 302  # still anonymous: sent to /login
    [event] = audit_events(app, "login")
    assert event.outcome == "failure"
    assert event.tenant_id == tenant.tenant_id
    assert event.actor == f"email:{tenant.admin_email}"
    assert "not the password" not in repr(raw_rows(app, "audit_events"))


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(app, client, auth, tenant):
    known = auth.login(tenant.admin_email, "not the password")
    unknown = auth.login("nobody@acme.test", "not the password")
    assert unknown.status_code == known.status_code == 401
    assert unknown.data.replace(b"nobody@acme.test", b"EMAIL") == known.data.replace(
        tenant.admin_email.encode(), b"EMAIL")
    assert logged_in_user_id(client) is None
    outcomes = [(e.actor, e.outcome) for e in audit_events(app, "login")]
    assert outcomes == [(f"email:{tenant.admin_email}", "failure"), ("email:nobody@acme.test", "failure")]


@pytest.mark.parametrize("data", [{}, {"email": "admin@acme.test"}, {"password": PASSWORD}])
def test_incomplete_login_form_is_refused(client, tenant, data):
    response = client.post("/login", data=data)
    assert response.status_code == 422
    assert logged_in_user_id(client) is None


@pytest.mark.parametrize("target", ["/crm/marketing/meta/connect", "/crm/marketing?tab=1"])
def test_next_accepts_same_site_relative_paths(client, tenant, target):
    response = client.post("/login", query_string={"next": target},
                           data={"email": tenant.admin_email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == target


OPEN_REDIRECTS = [
    "//evil.test",
    "///evil.test",
    "https://evil.test",
    "http://evil.test/crm/marketing",
    "evil.test",
    "javascript:alert(1)",
    "https:/evil.test",
    pytest.param("/\\evil.test", id="backslash"),
    pytest.param("/\t/evil.test", id="tab"),
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_refuses_open_redirects(client, tenant, target):
    response = client.post("/login", query_string={"next": target},
                           data={"email": tenant.admin_email, "password": PASSWORD})
    assert response.status_code == 302
    assert stays_on_site(response.headers["Location"]), response.headers["Location"]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_of_an_already_logged_in_user_refuses_open_redirects(admin_client, target):
    response = admin_client.get("/login", query_string={"next": target})
    assert response.status_code == 302
    assert stays_on_site(response.headers["Location"]), response.headers["Location"]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_language_switch_refuses_open_redirects(client, target):
    response = client.get("/lang/es", query_string={"next": target})
    assert response.status_code == 302
    assert stays_on_site(response.headers["Location"]), response.headers["Location"]


def test_login_renews_the_session(client, auth, tenant):
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        sess["_user_id"] = "999"
    auth.login(tenant.admin_email)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"] != "999"


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_logout_is_post_only_a_get_changes_nothing(admin_client, accept):
    response = admin_client.get("/logout", headers={"Accept": accept})
    assert response.status_code == 405
    assert response.headers["Allow"].split(", ").count("POST") == 1
    assert "GET" not in response.headers["Allow"]
    assert logged_in_user_id(admin_client) is not None
    assert admin_client.get(HUB).status_code == 200


def test_pages_log_out_with_a_post_form_carrying_the_csrf_token(csrf_app):
    client = csrf_app.test_client()
    page = client.get("/login")
    client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD,
                                "csrf_token": csrf_token_from(page.data)})
    hub = client.get(HUB).get_data(as_text=True)
    form = re.search(r'<form method="post" action="/logout"[^>]*>(.*?)</form>', hub, re.S)
    assert form, "the logout control is a POST form"
    assert 'name="csrf_token"' in form.group(1)
    assert 'href="/logout"' not in hub
    assert client.post("/logout", data={"csrf_token": csrf_token_from(form.group(1))}).status_code == 302
    assert logged_in_user_id(client) is None


def test_logout_post_ends_the_session_and_audits(app, admin_client, auth, tenant):
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert logged_in_user_id(admin_client) is None
    assert admin_client.get(HUB).status_code == 302
    [event] = audit_events(app, "logout")
    assert event.outcome == "success"
    assert event.tenant_id == tenant.tenant_id
    assert event.actor.startswith("user:")


# -- CSRF ------------------------------------------------------------------------------------
@pytest.fixture
def csrf_app(make_app, make_tenant):
    app = make_app(WTF_CSRF_ENABLED=True)
    make_tenant("acme", app_=app)
    return app


def csrf_login(client, email: str) -> str:
    token = csrf_token_from(client.get("/login").data)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return csrf_token_from(client.get(HUB).data)


def test_csrf_login_without_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert logged_in_user_id(client) is None


def test_csrf_login_with_a_forged_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    client.get("/login")
    response = client.post("/login", data={"email": "admin@acme.test", "password": PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 400
    assert logged_in_user_id(client) is None


def test_csrf_login_with_the_page_token_passes(csrf_app):
    client = csrf_app.test_client()
    csrf_login(client, "admin@acme.test")
    assert logged_in_user_id(client) is not None


def test_csrf_logout_without_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    csrf_login(client, "admin@acme.test")
    assert client.post("/logout").status_code == 400
    assert logged_in_user_id(client) is not None


def test_csrf_session_api_write_without_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    csrf_login(client, "admin@acme.test")
    response = client.post("/crm/auth/meta/disconnect")
    assert_envelope(response, 400, "csrf_failed")


def test_csrf_session_api_write_with_a_wrong_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    csrf_login(client, "admin@acme.test")
    response = client.post("/crm/auth/meta/disconnect", headers={"X-CSRFToken": "forged"})
    assert_envelope(response, 400, "csrf_failed")


def test_csrf_session_api_write_with_the_page_token_passes(csrf_app):
    client = csrf_app.test_client()
    token = csrf_login(client, "admin@acme.test")
    response = client.post("/crm/auth/meta/disconnect", headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"] == {"disconnected": True, "revoked_at_meta": False}


def test_csrf_empty_authorization_header_does_not_bypass_csrf(csrf_app):
    client = csrf_app.test_client()
    csrf_login(client, "admin@acme.test")
    response = client.post("/crm/auth/meta/disconnect", headers={"Authorization": ""})
    assert response.status_code in (400, 401)


def test_csrf_bearer_api_write_needs_no_token(csrf_app):
    client = csrf_app.test_client()
    with csrf_app.app_context():
        tenant_id = db.session.scalar(text("SELECT id FROM tenants WHERE slug = 'acme'"))
    response = client.post("/crm/auth/meta/disconnect", headers=bearer(tenant_id))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["success"] is True


# -- rate limit and hashing ------------------------------------------------------------------
def test_login_attempts_are_rate_limited(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3/minute")
    make_tenant("acme", app_=app)
    auth = AuthActions(app.test_client())
    for _ in range(3):
        assert auth.login("admin@acme.test", "wrong password").status_code == 401
    response = auth.login("admin@acme.test")  # even the right password now waits
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert len(audit_events(app, "login")) == 3


def test_building_another_app_leaves_rate_limits_alone(make_app, make_tenant):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1/minute")
    make_app(RATELIMIT_ENABLED=False)  # e.g. a second app in the same process, or a test fixture
    auth = AuthActions(app.test_client())
    assert auth.login("nobody@acme.test", "wrong password").status_code == 401
    assert auth.login("nobody@acme.test", "wrong password").status_code == 429


def test_login_page_get_is_not_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1/minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/login").status_code == 200


def test_passwords_are_stored_as_scrypt_hashes(app, tenant):
    rows = raw_rows(app, "users")
    assert len(rows) == 2
    for row in rows:
        assert row["password_hash"].startswith("scrypt:")
        assert PASSWORD not in repr(row)
    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(email=tenant.admin_email))
        assert user.check_password(PASSWORD)
        assert not user.check_password(PASSWORD.upper())
        other = User(email="x@acme.test", tenant_id=tenant.tenant_id)
        other.set_password(PASSWORD)
        assert other.password_hash != user.password_hash  # salted


def test_an_unknown_email_costs_the_same_password_check_as_a_known_one(client, tenant, monkeypatch):
    """Timing: without a hash check for unknown e-mails they answered ~20x faster (6 ms vs
    110 ms with production scrypt), telling which addresses have an account."""
    from werkzeug.security import check_password_hash

    import crm_meta.auth.login
    import crm_meta.models.user

    checked: list[str] = []

    def spy(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])  # the method and its cost, e.g. scrypt:1024:8:1
        return check_password_hash(pwhash, password)

    monkeypatch.setattr(crm_meta.auth.login, "check_password_hash", spy)
    monkeypatch.setattr(crm_meta.models.user, "check_password_hash", spy)
    auth = AuthActions(client)
    assert auth.login(tenant.admin_email, "a wrong password").status_code == 401
    assert auth.login("nobody@acme.test", "a wrong password").status_code == 401
    assert len(checked) == 2
    assert checked[0] == checked[1]


@pytest.mark.parametrize("typed", ["Tr0ub4dor&3 horse", "hunter2", "correct horse battery"])
def test_a_password_typed_into_the_email_field_is_never_an_identity(app, client, auth, tenant,
                                                                     caplog, typed):
    """The review's reproduction: the value of a credential field in the audit trail and the
    log as the actor. A value that is no e-mail is recorded by a keyed hash."""
    caplog.set_level(logging.DEBUG)
    assert auth.login(typed, "whatever").status_code == 401
    assert auth.login(typed, "whatever again").status_code == 401
    events = audit_events(app, "login")
    assert len(events) == 2 and events[0].actor == events[1].actor
    assert events[0].actor.startswith("typed-sha256:") and typed not in events[0].actor
    assert typed not in repr(raw_rows(app, "audit_events"))
    assert not [r for r in caplog.records if typed in r.getMessage() or typed in repr(vars(r))]


@pytest.mark.parametrize("state", ["untouched", "read", "cleared", "written"])
def test_the_session_cookie_is_answered_as_flask_answers_it(app, state):
    """The interface skips the cookie settings for an empty, unchanged session (every bearer call,
    every webhook): each session state still gets Flask's own headers (Vary, Set-Cookie)."""
    from flask.sessions import SecureCookieSessionInterface

    from crm_meta.auth.sessions import CookieSessionInterface

    def answered(interface) -> dict[str, list[str]]:
        with app.test_request_context("/", headers={"Cookie": "other=1"}):
            session = interface.session_class({"_user_id": "1"} if state == "cleared" else {})
            if state == "read":
                session.get("_remember")
            elif state == "cleared":
                session.clear()
            elif state == "written":
                session["_user_id"] = "7"
            response = app.response_class("")
            interface.save_session(app, session, response)
            return {name: response.headers.getlist(name) for name in ("Vary", "Set-Cookie")}

    ours, flasks = answered(CookieSessionInterface()), answered(SecureCookieSessionInterface())
    assert ours["Vary"] == flasks["Vary"]
    def names(cookies: list[str]) -> list[str]:
        return [cookie.split("=", 1)[0] for cookie in cookies]

    assert names(ours["Set-Cookie"]) == names(flasks["Set-Cookie"])
    assert bool(ours["Set-Cookie"]) == (state in {"cleared", "written"})
