"""Property: whatever headers, claims, cookies and query strings reach an API route, the answer
is the contract's envelope, never a 500 (on SQLite and on PostgreSQL, where column lengths
and integer ranges are enforced)."""

from __future__ import annotations

import json
import os
import warnings
from datetime import UTC, datetime

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from tests.helpers.sandbox import MetaFlow
from tests.helpers.settings import JWT_SECRET
from tests.helpers.users import PASSWORD

ADMIN_TOKEN = "fuzz-admin-token-0123456789"
CRM = "https://crm.example.com"
ROUTES = [("GET", "/crm/marketing/token-status"), ("GET", "/crm/auth/meta/url"),
          ("GET", "/crm/marketing/meta-portfolios"), ("GET", "/crm/marketing/meta-accounts"),
          ("POST", "/crm/marketing/connect"), ("GET", "/crm/auth/meta/test-connection"),
          ("GET", "/crm/auth/meta/debug/token"), ("POST", "/crm/auth/meta/disconnect"),
          ("GET", "/crm/auth/meta/callback")]
# Reproducible in CI (the same examples every run); FUZZ_EXAMPLES=5000 FUZZ_RANDOM=1 explores.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 250))
DERANDOMIZE = not os.environ.get("FUZZ_RANDOM")

# What a real server can hand over in a header: latin-1, no line breaks; often non-ASCII.
header_text = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0xFF, exclude_characters="\r\n"),
            max_size=120),
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0xFF), min_size=1, max_size=8))
# Lengths around the limits that matter: String(64) slugs, String(100) actors.
sized_text = st.sampled_from([1, 2, 63, 64, 65, 96, 97, 100, 101, 200, 300]).flatmap(
    lambda n: st.text(min_size=n, max_size=n))
any_text = st.text(max_size=150)
odd_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text,
                       st.lists(st.integers(), max_size=2), st.dictionaries(any_text, st.integers(),
                                                                            max_size=2))


def mostly(good, odd):
    """`good` three times in four: the examples reach deep, and still meet every odd value."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: good if ok else odd)


def claims(tenant_id: int):
    """Well-formed tokens (CRM-shaped or ours, any subject length, any role), and tokens where
    any claim may be odd or absent."""
    now = int(datetime.now(UTC).timestamp())
    subject = st.one_of(st.just("42"), sized_text)

    def shape(tenant, role, names, value, iat):
        body = {"tenant_id": tenant, "role": role, "exp": now + 3600} | dict.fromkeys(names, value)
        return body | ({"iat": now - 60} if iat else {"email": "ana@acme.test", "niche_type": "crm_sales"})

    well_formed = st.builds(
        shape, st.one_of(st.sampled_from([tenant_id, str(tenant_id), "acme"]), sized_text),
        st.sampled_from(["ceo", "admin", "member", "setter", "closer", "viewer"]),
        st.sampled_from([("sub",), ("user_id",), ("sub", "user_id")]), subject, st.booleans())
    odd = st.fixed_dictionaries({}, optional={
        name: st.one_of(odd_values, st.integers(min_value=-2**80, max_value=2**80))
        for name in ("tenant_id", "role", "exp", "user_id", "sub", "iat")})
    return mostly(well_formed, odd)


def signed(payload: dict) -> str:
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@st.composite
def calls(draw, tenant_id: int, session_cookie: str):
    method, path = draw(st.sampled_from(ROUTES))
    token = mostly(claims(tenant_id).map(signed), header_text)
    headers = {}
    for name, values, chance in [
        ("Authorization", mostly(token.map(lambda t: f"Bearer {t}"), header_text), 2),
        ("X-Tenant-ID", mostly(st.sampled_from([str(tenant_id), "acme"]), header_text), 2),
        ("X-Admin-Token", mostly(st.just(ADMIN_TOKEN), header_text), 4),
        ("Origin", mostly(st.just(CRM), header_text), 2),
        ("Sec-Fetch-Site", mostly(st.sampled_from(["same-origin", "cross-site"]), header_text), 2),
        ("Accept", st.sampled_from(["application/json", "text/html", "*/*"]), 2),
    ]:
        if draw(st.sampled_from([True] * chance + [False])):  # present chance/(chance+1) of the time
            headers[name] = draw(values)
    cookies = {}
    if draw(st.booleans()):
        cookies["access_token"] = draw(token)
    if draw(st.booleans()):
        cookies["session"] = session_cookie
    query = draw(st.dictionaries(
        st.one_of(st.sampled_from(["portfolio_id", "refresh", "rerequest", "state", "code", "error",
                                   "error_reason"]), any_text), any_text, max_size=4))
    body = draw(st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["account_id", "business_id", "account_name"]),
        st.one_of(st.just("act_1"), odd_values), max_size=3)))
    return method, path, headers, cookies, query, body


def connected_app(app, make_tenant, sandbox):
    """A tenant connected through the sandbox, and the session cookie of its admin."""
    tenant = make_tenant("acme", app_=app)
    client = app.test_client()
    client.environ_base["HTTP_X_ADMIN_TOKEN"] = app.config["CRM_ADMIN_TOKEN"]
    client.post("/login", data={"email": tenant.admin_email, "password": PASSWORD})
    assert MetaFlow(client, sandbox).connect().status_code == 200
    return tenant, client.get_cookie("session").value


def snapshot(app) -> dict:
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        return {attr.key: getattr(row, attr.key) for attr in MetaConnection.__mapper__.column_attrs}


def restore(app, saved: dict) -> None:
    """Put the connection back as it was, so a drawn disconnect does not end the deep paths."""
    with app.app_context():
        db.session.execute(db.delete(MetaConnection))
        db.session.execute(db.insert(MetaConnection).values(**saved))
        db.session.commit()


def check_never_a_500(app, tenant, session_cookie):
    saved = snapshot(app)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(call=calls(tenant.tenant_id, session_cookie))
    def run(call):
        method, path, headers, cookies, query, body = call
        client = app.test_client()
        with warnings.catch_warnings():  # an oversized cookie is part of the input space
            warnings.filterwarnings("ignore", "The '.*' cookie is too large", UserWarning)
            for name, value in cookies.items():
                client.set_cookie(name, value)
        response = client.open(path, method=method, headers=headers, query_string=query,
                               data=None if body is None else json.dumps(body),
                               content_type="application/json")
        restore(app, saved)
        assert response.status_code != 500, (response.status_code, response.get_data(as_text=True))
        if response.status_code >= 400:
            envelope = response.get_json()
            assert envelope["success"] is False and envelope["error"]["code"], envelope
            assert envelope["error"]["code"] != "internal_error"

    run()


@pytest.fixture
def fuzz_app(make_app):
    def build(database_url=None, admin_token=ADMIN_TOKEN):
        return make_app(database_url, CRM_ADMIN_TOKEN=admin_token, CRM_ORIGINS=[CRM],
                        RATELIMIT_ENABLED=True, RATELIMIT_META_URL="10000/second",
                        RATELIMIT_META_TEST="10000/second", RATELIMIT_META_DISCONNECT="10000/second",
                        RATELIMIT_META_CALLBACK="10000/second")
    return build


def test_never_a_500_on_sqlite(fuzz_app, make_tenant, sandbox):
    app = fuzz_app()
    check_never_a_500(app, *connected_app(app, make_tenant, sandbox))


@pytest.mark.postgres
def test_never_a_500_on_postgres(fuzz_app, make_tenant, sandbox, postgres_url):
    # No admin token here: every example gets past it, into claims, tenants and the database.
    app = fuzz_app(postgres_url, admin_token="")
    check_never_a_500(app, *connected_app(app, make_tenant, sandbox))
