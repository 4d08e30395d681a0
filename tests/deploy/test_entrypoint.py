"""The container entrypoint run as a plain process: config, database wait, migrations, gunicorn.

No Docker engine runs here, so these tests start `docker/entrypoint.sh` itself with the
production settings the image would get, against a throw-away database.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import requests
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
# The interpreter running the tests lives in the project's virtualenv, next to flask and gunicorn.
VENV_BIN = Path(sys.executable).parent
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Upper bounds of the waits below; they are limits, not expectations.
START_WAIT_SECONDS = 60
GRACEFUL_TIMEOUT = 10
QUICK_EXIT_SECONDS = 60


@dataclass
class Database:
    """A throw-away database the entrypoint migrates, and a way to look inside it."""

    kind: str
    url: str
    sqlite_path: Path | None = None

    def tables(self) -> set[str]:
        if self.sqlite_path is not None:
            with _sqlite(self.sqlite_path) as conn:
                rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                return {name for (name,) in rows}
        with _postgres(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            return {name for (name,) in cur.fetchall()}

    def alembic_versions(self) -> set[str]:
        if self.sqlite_path is not None:
            with _sqlite(self.sqlite_path) as conn:
                return {v for (v,) in conn.execute("SELECT version_num FROM alembic_version")}
        with _postgres(self.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            return {v for (v,) in cur.fetchall()}


def _sqlite(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


def _postgres(url: str) -> closing:
    return closing(psycopg2.connect(url, connect_timeout=5))


def _migration_heads() -> set[str]:
    return set(ScriptDirectory(str(ROOT / "migrations")).get_heads())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sqlite_database(tmp_path: Path) -> Database:
    path = tmp_path / "entrypoint.sqlite"
    return Database("sqlite", f"sqlite:///{path}", sqlite_path=path)


@pytest.fixture
def postgres_database() -> Iterator[Database]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards.

    With REQUIRE_POSTGRES set an unreachable server is a failure; otherwise a visible skip.
    """
    admin = make_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL)
    admin = admin.set(drivername="postgresql")
    admin_url = admin.render_as_string(hide_password=False)
    try:
        conn = psycopg2.connect(admin_url, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        first_line = (str(exc).strip().splitlines() or ["no answer"])[0]
        where = admin.render_as_string(hide_password=True)
        reason = f"PostgreSQL not reachable at {where}: {first_line}"
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unreachable: {reason}")
        pytest.skip(f"{reason}; set REQUIRE_POSTGRES=1 to make this a failure")
    name = f"crm_meta_entrypoint_{uuid.uuid4().hex[:12]}"
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield Database("postgresql", admin.set(database=name).render_as_string(hide_password=False))
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def database(request, tmp_path) -> Database:
    """Both databases the service supports; the PostgreSQL case skips or fails as above."""
    if request.param == "sqlite":
        return _sqlite_database(tmp_path)
    return request.getfixturevalue("postgres_database")


def production_env(tmp_path: Path, database_url: str, **changes: str | None) -> dict[str, str]:
    """A clean environment with production-valued secrets; a change of None removes a variable."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        # Only what is set here counts: no developer .env may fill in a missing secret.
        "FLASK_SKIP_DOTENV": "1",
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "META_APP_ID": str(secrets.randbelow(9 * 10**14) + 10**14),
        "META_APP_SECRET": secrets.token_hex(16),
        "META_REDIRECT_URI": "https://crm.example.test/crm/auth/meta/callback",
        "META_MODE": "live",
        "DB_WAIT_ATTEMPTS": "10",
        "DB_WAIT_SECONDS": "1",
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill whatever is left of the entrypoint's process group, then reap the entrypoint."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def run_entrypoint(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the entrypoint to completion (bounded), as its own process group."""
    proc = subprocess.Popen(
        [str(ENTRYPOINT), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=QUICK_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        pytest.fail(f"entrypoint still running after {QUICK_EXIT_SECONDS}s\n{stdout}\n{stderr}")
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _wait_for_200(proc: subprocess.Popen, url: str, deadline: float, logs) -> requests.Response:
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"entrypoint exited ({proc.returncode}) before {url} answered\n{logs()}")
        try:
            response = requests.get(url, timeout=2)
        except requests.RequestException as exc:
            last = type(exc).__name__
        else:
            if response.status_code == 200:
                return response
            last = f"HTTP {response.status_code}"
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer 200 within {START_WAIT_SECONDS}s (last: {last})\n{logs()}")


def test_entrypoint_migrates_then_serves_healthz_and_stops_cleanly_on_sigterm(tmp_path, database):
    port = _free_port()
    env = production_env(
        tmp_path,
        database.url,
        HOST="127.0.0.1",
        PORT=str(port),
        GUNICORN_WORKERS="1",
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
    )
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"

    def logs() -> str:
        return (
            f"--- stdout ---\n{stdout_path.read_text(errors='replace')}"
            f"--- stderr ---\n{stderr_path.read_text(errors='replace')}"
        )

    # Started from an unrelated folder: the script must find the app from its own location.
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(ENTRYPOINT)], cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_WAIT_SECONDS
        base = f"http://127.0.0.1:{port}"
        health = _wait_for_200(proc, f"{base}/healthz", deadline, logs)
        assert health.headers["Content-Type"].startswith("application/json")
        _wait_for_200(proc, f"{base}/readyz", deadline, logs)
        # A query string that must not reach the access log (OAuth callbacks carry codes there).
        requests.get(f"{base}/healthz?code=entrypoint-secret-code", timeout=5)

        # The migration really ran: the schema is there and stamped at the head revision.
        assert {"alembic_version", "tenants", "meta_tokens"} <= database.tables()
        assert database.alembic_versions() == _migration_heads()

        # The entrypoint exec'd gunicorn: the process we started is now gunicorn's master.
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        if cmdline.exists():
            assert b"gunicorn" in cmdline.read_bytes(), logs()

        proc.send_signal(signal.SIGTERM)
        try:
            returncode = proc.wait(timeout=GRACEFUL_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gunicorn still running {GRACEFUL_TIMEOUT + 10}s after SIGTERM\n{logs()}")
        assert returncode == 0, logs()
        # No worker outlived its master.
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            _kill_group(proc)

    stdout, stderr = stdout_path.read_text(), stderr_path.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in stdout, logs()  # access log on stdout
    assert "entrypoint-secret-code" not in stdout + stderr
    assert "Traceback" not in stderr, logs()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("change", "named"),
    [({"SECRET_KEY": None}, "SECRET_KEY"), ({"META_MODE": "sandbox"}, "META_MODE")],
    ids=["missing-SECRET_KEY", "sandbox-in-production"],
)
def test_entrypoint_refuses_unsafe_production_config_with_one_line(tmp_path, change, named):
    if named == "SECRET_KEY" and _dotenv_defines(named):
        pytest.skip(f"{ROOT / '.env'} defines {named}: the app reads it, so it is never missing")
    database = _sqlite_database(tmp_path)
    env = production_env(tmp_path, database.url, PORT=str(_free_port()), **change)

    result = run_entrypoint(env, tmp_path)

    assert result.returncode != 0
    lines = result.stderr.splitlines()
    naming = [line for line in lines if named in line and f"JWT_{named}" not in line]
    assert len(naming) == 1, result.stderr
    assert "Traceback" not in result.stderr
    # It stopped before the database wait, the migration and gunicorn.
    assert "waiting" not in result.stderr
    assert "migrating the database" not in result.stderr
    assert "Booting worker" not in result.stdout + result.stderr


def _dotenv_defines(name: str) -> bool:
    dotenv = ROOT / ".env"
    if not dotenv.is_file():
        return False
    lines = dotenv.read_text(errors="replace").splitlines()
    return any(line.strip().removeprefix("export ").startswith(f"{name}=") for line in lines)


def test_entrypoint_gives_up_when_the_database_never_answers(tmp_path):
    closed_port = _free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/nowhere"
    env = production_env(tmp_path, url, DB_WAIT_ATTEMPTS="3", DB_WAIT_SECONDS="0.2")

    result = run_entrypoint(env, tmp_path)

    assert result.returncode != 0
    assert result.stderr.count("database not reachable yet") == 3, result.stderr
    assert "giving up" in result.stderr
    assert "Traceback" not in result.stderr
    assert "migrating the database" not in result.stderr
    assert "Booting worker" not in result.stdout + result.stderr


def test_entrypoint_migrates_then_runs_a_given_command_without_the_scheduler(tmp_path):
    database = _sqlite_database(tmp_path)
    env = production_env(tmp_path, database.url, SCHEDULER_ENABLED="1")
    command = "import os; print('SCHEDULER_ENABLED=' + os.environ['SCHEDULER_ENABLED'])"

    result = run_entrypoint(env, tmp_path, "python", "-c", command)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "SCHEDULER_ENABLED=0"
    assert database.alembic_versions() == _migration_heads()
    assert "Booting worker" not in result.stdout + result.stderr


def test_served_with_log_format_json_every_server_line_is_json_with_request_ids(tmp_path):
    """As in the image: gunicorn's own lines and the app's lines are JSON objects, one per line,
    and the app's request line replaces gunicorn's access log."""
    port = _free_port()
    env = production_env(tmp_path, _sqlite_database(tmp_path).url, HOST="127.0.0.1", PORT=str(port),
                         GUNICORN_WORKERS="1", LOG_FORMAT="json",
                         GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT))
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"

    def logs() -> str:
        return f"--- stdout ---\n{stdout_path.read_text()}--- stderr ---\n{stderr_path.read_text()}"

    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen([str(ENTRYPOINT)], cwd=tmp_path, env=env, stdout=out, stderr=err,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_200(proc, f"{base}/healthz", time.monotonic() + START_WAIT_SECONDS, logs)
        answer = requests.get(f"{base}/healthz?code=entrypoint-secret-code", timeout=5,
                              headers={"X-Request-ID": "from-the-load-balancer"})
        assert answer.headers["X-Request-ID"] == "from-the-load-balancer"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=GRACEFUL_TIMEOUT + 10) == 0, logs()
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            _kill_group(proc)

    stdout, stderr = stdout_path.read_text(), stderr_path.read_text()
    assert stdout == "", logs()  # no plain access log
    # The entrypoint's own start-up lines come first; from gunicorn's start on, JSON only.
    served = stderr.split("entrypoint: starting: gunicorn", 1)[1].split("\n", 1)[1]
    lines = [json.loads(line) for line in served.splitlines()]
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"]
               for line in lines), logs()
    [request_line] = [line for line in lines if line.get("request_id") == "from-the-load-balancer"]
    assert (request_line["route"], request_line["status"]) == ("/healthz", 200)
    assert "entrypoint-secret-code" not in stdout + stderr
