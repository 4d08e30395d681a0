"""Migrations and models agree, on SQLite and on PostgreSQL, whatever the number of revisions."""

from __future__ import annotations

import uuid
import warnings

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from crm_meta.infra.database import db
from tests.helpers.database import script_directory

EXPECTED_TABLES = {"tenants", "users", "meta_tokens", "oauth_states", "audit_events"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path):
    """A database with nothing in it: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"crm_meta_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def bare_app(build_app, empty_database, keep_logging):
    return build_app(empty_database)


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def tables(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def current_revision(app) -> str | None:
    with app.app_context(), db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_there_is_exactly_one_head():
    heads = script_directory().get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; merge them"


def test_every_revision_can_be_downgraded():
    for revision in script_directory().walk_revisions():
        assert hasattr(revision.module, "downgrade"), revision.revision


def test_flask_db_upgrade_creates_the_schema_the_models_describe(bare_app):
    assert tables(bare_app) == set()
    with bare_app.app_context():
        result = bare_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert tables(bare_app) >= EXPECTED_TABLES
    assert set(db.metadata.tables) <= tables(bare_app)
    assert current_revision(bare_app) == script_directory().get_current_head()
    assert schema_differences(bare_app) == []


def test_downgrade_to_base_and_upgrade_again(bare_app):
    with bare_app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
    assert tables(bare_app) <= {"alembic_version"}
    assert current_revision(bare_app) is None
    with bare_app.app_context():
        flask_migrate.upgrade()
    assert schema_differences(bare_app) == []


def test_every_step_down_and_up_works(bare_app):
    revisions = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
    with bare_app.app_context():
        for revision in revisions:
            flask_migrate.upgrade(revision=revision)
            assert current_revision(bare_app) == revision
        for _ in revisions:
            flask_migrate.downgrade(revision="-1")
    assert current_revision(bare_app) is None


def test_the_migrated_schema_serves_the_app(bare_app, make_tenant):
    with bare_app.app_context():
        flask_migrate.upgrade()
    acme = make_tenant("acme", app_=bare_app)
    client = bare_app.test_client()
    response = client.post("/login", data={"email": acme.admin_email, "password": "correct horse battery"})
    assert response.status_code == 302
    assert client.get("/crm/marketing/token-status").status_code == 200


def test_env_py_uses_no_deprecated_api(build_app, tmp_path, keep_logging):
    app = build_app(f"sqlite:///{tmp_path / 'warnings.db'}")
    with app.app_context(), warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        flask_migrate.upgrade()
