"""The command line: tenants, users, demo seed, jwt mint, crypto rotate, and their help."""

from __future__ import annotations

import click
import jwt
import pytest

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.models import User
from tests.helpers.cli import invoke, ok, refused
from tests.helpers.database import raw_rows, tenants
from tests.helpers.settings import JWT_SECRET, KEY_A, KEY_B, PLAINTEXT
from tests.helpers.users import PASSWORD

STRONG = "a-strong-passphrase-42"


# -- tenants ---------------------------------------------------------------------------------
def test_tenants_create_derives_the_slug(app):
    output = ok(invoke(app, ["tenants", "create", "Acme Ventas S.A."]))
    assert "acme-ventas-s-a" in output
    assert tenants(app) == [("Acme Ventas S.A.", "acme-ventas-s-a")]


def test_tenants_create_with_slug(app):
    ok(invoke(app, ["tenants", "create", "Acme", "--slug", "acme-mx"]))
    assert tenants(app) == [("Acme", "acme-mx")]


def test_tenants_create_duplicate_slug_is_a_clear_error(app):
    ok(invoke(app, ["tenants", "create", "Acme"]))
    refused(invoke(app, ["tenants", "create", "Acme Two", "--slug", "acme"]), "already exists")
    refused(invoke(app, ["tenants", "create", "ACME"]), "already exists")
    assert tenants(app) == [("Acme", "acme")]


@pytest.mark.parametrize("slug", ["Bad Slug", "UPPER", "-leading-dash", "under_score", "a" * 64, "ñandú",
                                  "a/b"])
def test_tenants_create_refuses_bad_slugs(app, slug):
    refused(invoke(app, ["tenants", "create", "Acme", "--slug", slug]), "slug")
    assert tenants(app) == []


@pytest.mark.parametrize("name", ["", "   "])
def test_tenants_create_refuses_a_blank_name(app, name):
    refused(invoke(app, ["tenants", "create", name]), "name")
    assert tenants(app) == []


def test_tenants_create_needs_a_name(app):
    refused(invoke(app, ["tenants", "create"]), "NAME")


# -- users -----------------------------------------------------------------------------------
@pytest.fixture
def acme(app):
    ok(invoke(app, ["tenants", "create", "Acme"]))
    return "acme"


def users(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(u.email, u.role, u.tenant.slug) for u in db.session.scalars(db.select(User))]


def test_users_create_admin(app, acme, client):
    output = ok(invoke(app, ["users", "create", "Ana@Acme.test", "--tenant", acme, "--role", "admin",
                                    "--password", STRONG]))
    assert "ana@acme.test" in output
    assert users(app) == [("ana@acme.test", "admin", "acme")]
    assert STRONG not in output
    assert raw_rows(app, "users")[0]["password_hash"].startswith("scrypt:")
    response = client.post("/login", data={"email": "ana@acme.test", "password": STRONG})
    assert response.status_code == 302


def test_users_create_defaults_to_member_and_prompts_for_the_password(app, acme):
    result = invoke(app, ["users", "create", "bob@acme.test", "--tenant", acme],
                           input=f"{STRONG}\n{STRONG}\n")
    ok(result)
    assert users(app) == [("bob@acme.test", "member", "acme")]
    assert STRONG not in result.output  # hidden input


def test_users_create_unknown_tenant(app, acme):
    refused(invoke(app, ["users", "create", "x@acme.test", "--tenant", "nope", "--password", STRONG]),
            "no tenant", "nope")
    assert users(app) == []


def test_users_create_duplicate_email(app, acme):
    ok(invoke(app, ["users", "create", "x@acme.test", "--tenant", acme, "--password", STRONG]))
    refused(invoke(app, ["users", "create", "X@ACME.test", "--tenant", acme, "--password", STRONG]),
            "already exists")
    assert len(users(app)) == 1


@pytest.mark.parametrize("password", ["short", "123456789", "1234567890", "password1", "aaaaaaaaaaaaa",
                                      "abababababab", "qwertyuiop"])
def test_users_create_weak_password(app, acme, password):
    result = refused(invoke(app, ["users", "create", "x@acme.test", "--tenant", acme,
                                         "--password", password]), "weak password")
    assert password not in result.replace("weak password", "")
    assert users(app) == []


@pytest.mark.parametrize("email", ["not-an-email", "a" * 250 + "@x.test"])
def test_users_create_bad_email(app, acme, email):
    refused(invoke(app, ["users", "create", email, "--tenant", acme, "--password", STRONG]))
    assert users(app) == []


def test_users_create_bad_role(app, acme):
    refused(invoke(app, ["users", "create", "x@acme.test", "--tenant", acme, "--role", "ceo",
                                "--password", STRONG]), "role")
    assert users(app) == []


# -- demo seed -------------------------------------------------------------------------------
def test_demo_seed_is_idempotent_and_prints_how_to_log_in(app, client):
    first = ok(invoke(app, ["demo", "seed"]))
    second = ok(invoke(app, ["demo", "seed"]))
    assert first == second
    assert "http://localhost:8000/login" in first
    [(email, _, _)] = users(app)
    assert email in first
    assert tenants(app) == [("Demo Ventas", "demo")]
    password = first.rsplit("password", 1)[1].split()[0]
    assert len(password) >= 10
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302
    assert response.headers["Location"] == "/crm/marketing"


def test_demo_seed_uses_api_base_url(make_app):
    app = make_app(API_BASE_URL="https://crm.example.test")
    output = ok(invoke(app, ["demo", "seed"]))
    assert "https://crm.example.test/login" in output


# -- jwt mint --------------------------------------------------------------------------------
def test_jwt_mint_prints_a_token_the_api_accepts(app, acme, client):
    token = ok(invoke(app, ["jwt", "mint", "--tenant", acme, "--sub", "42", "--role", "admin",
                                   "--ttl", "600"])).strip()
    assert "\n" not in token
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["exp"] - claims["iat"]) == ("42", "admin", 600)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/crm/marketing/token-status", headers=headers).status_code == 200
    assert client.get("/crm/auth/meta/url", headers=headers).status_code == 200


def test_jwt_mint_default_role_is_admin(app, acme):
    token = ok(invoke(app, ["jwt", "mint", "--tenant", acme, "--sub", "42"])).strip()
    assert jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["role"] == "admin"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--tenant", "nope", "--sub", "1"], "no tenant"),
    (["--tenant", "acme"], "--sub"),
    (["--sub", "1"], "--tenant"),
    (["--tenant", "acme", "--sub", "1", "--ttl", "0"], "--ttl"),
    (["--tenant", "acme", "--sub", "1", "--ttl", "soon"], "--ttl"),
])
def test_jwt_mint_bad_input(app, acme, args, fragment):
    refused(invoke(app, ["jwt", "mint", *args]), fragment)


# -- crypto rotate ---------------------------------------------------------------------------
def test_crypto_rotate_reencrypts_with_the_current_key(make_app, make_tenant, build_app, sqlite_url,
                                                       store_token, stored_token, kid):
    old = make_app(database_url=sqlite_url, ENCRYPTION_KEY=KEY_A)
    acme = make_tenant("acme", app_=old)
    store_token(old, acme.tenant_id)
    [before] = raw_rows(old, "meta_tokens")
    assert before["access_token"].startswith(f"v1.{kid(old)}.")

    # A process that only knows key B cannot read the A-token: an error, never plaintext.
    only_b = build_app(sqlite_url, ENCRYPTION_KEY=KEY_B)
    with pytest.raises(CryptoError) as excinfo:
        stored_token(only_b, acme.tenant_id)
    assert PLAINTEXT not in str(excinfo.value)

    new = build_app(sqlite_url, ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEYS_PREVIOUS=[KEY_A])
    assert stored_token(new, acme.tenant_id) == PLAINTEXT  # the previous key still reads
    output = ok(invoke(new, ["crypto", "rotate"]))
    assert "re-encrypted 1 token" in output
    assert PLAINTEXT not in output
    [after] = raw_rows(new, "meta_tokens")
    assert after["access_token"] != before["access_token"]
    assert after["access_token"].startswith(f"v1.{kid(new)}.")
    assert after["key_id"] == kid(new) != kid(old)
    assert stored_token(new, acme.tenant_id) == PLAINTEXT
    assert stored_token(only_b, acme.tenant_id) == PLAINTEXT  # key A can now be retired
    with pytest.raises(CryptoError):
        stored_token(old, acme.tenant_id)

    assert "re-encrypted 0 token" in ok(invoke(new, ["crypto", "rotate"]))


def test_crypto_rotate_with_nothing_stored(app):
    assert "re-encrypted 0 token" in ok(invoke(app, ["crypto", "rotate"]))


def test_crypto_rotate_without_the_old_key_is_a_clear_error(make_app, make_tenant, build_app, sqlite_url,
                                                            store_token):
    old = make_app(database_url=sqlite_url, ENCRYPTION_KEY=KEY_A)
    acme = make_tenant("acme", app_=old)
    store_token(old, acme.tenant_id)
    only_b = build_app(sqlite_url, ENCRYPTION_KEY=KEY_B)
    result = invoke(only_b, ["crypto", "rotate"])
    refused(result, "ENCRYPTION_KEYS_PREVIOUS")
    assert PLAINTEXT not in result.output


def test_commands_run_under_the_runner_fixture(app, runner):
    ok(runner.invoke(args=["tenants", "create", "Acme"]))
    assert tenants(app) == [("Acme", "acme")]


# -- help ------------------------------------------------------------------------------------
GROUPS = ["tenants", "users", "demo", "jwt", "meta", "crypto"]


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_and_command_has_help(app, group):
    command = app.cli.commands[group]
    assert isinstance(command, click.Group)
    assert command.help and command.help.strip()
    assert command.help.strip() in ok(invoke(app, [group, "--help"]))
    assert command.commands, f"{group} has no commands"
    for name, sub in command.commands.items():
        assert sub.help and sub.help.strip(), f"{group} {name} has no help text"
        output = ok(invoke(app, [group, name, "--help"]))
        assert sub.help.strip().splitlines()[0] in output


@pytest.mark.parametrize(("group", "name"), [("tenants", "create"), ("users", "create"), ("demo", "seed"),
                                             ("jwt", "mint"), ("crypto", "rotate")])
def test_the_contract_commands_exist(app, group, name):
    assert name in app.cli.commands[group].commands


def test_password_constant_is_not_weak():
    from crm_meta.cli import password_problem

    assert password_problem(PASSWORD) is None
