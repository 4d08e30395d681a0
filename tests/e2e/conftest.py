"""Browser tests: the app (with its in-app Meta sandbox) on a live port, driven by Chromium;
and CRM Ventas' side (its pages on another origin, its login token) for the cross-origin tests.

One browser per session, a fresh context per test. Chromium and axe-core are found or
installed here; when one is missing the tests skip with the reason, or fail when the
environment sets REQUIRE_BROWSER=1 (CI does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import requests
from werkzeug.serving import make_server

from crm_meta.app import create_app
from crm_meta.infra.database import db
from tests.helpers.settings import JWT_SECRET, testing_config
from tests.helpers.users import TenantUsers, add_tenant

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
CACHE = HERE / ".cache"  # axe-core from npm, installed at test time (never committed)
AXE = CACHE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def unavailable(reason: str):
    """Skip with the reason, or fail when the run requires the browser (REQUIRE_BROWSER=1)."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1)")
    pytest.skip(f"{reason}; set REQUIRE_BROWSER=1 to make this a failure")


@pytest.fixture
def artifacts() -> Path:
    """Where the tests leave screenshots and the like (tests/e2e/artifacts, ignored by git)."""
    return ARTIFACTS


# -- the app on a live port ------------------------------------------------------------------
class Served:
    """A WSGI app on a live port of 127.0.0.1, in a thread: bound first (port 0, a free one), so
    an app can be built for its exact address, then started."""

    def __init__(self):
        self.server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, app) -> Served:
        self.server.app = app
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never ran
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


def app_for(base: str, database: Path, **config):
    """The app served at `base`, its in-app sandbox under it, on a fresh SQLite database."""
    app = create_app(testing_config(
        f"{base}/sandbox/meta", f"sqlite:///{database}", API_BASE_URL=base,
        META_REDIRECT_URI=f"{base}/crm/auth/meta/callback", WTF_CSRF_ENABLED=True, **config))
    with app.app_context():
        db.create_all()
    return app


def close(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@dataclass
class LiveApp:
    url: str
    app: object
    sandbox_url: str = field(init=False)

    def __post_init__(self):
        self.sandbox_url = f"{self.url}/sandbox/meta"

    def reset_sandbox(self) -> None:
        requests.post(f"{self.sandbox_url}/_sandbox/reset", timeout=10).raise_for_status()

    def add_tenant(self) -> dict:
        """A fresh tenant with an admin and a member; returns their emails."""
        added = add_tenant(self.app, f"t{uuid.uuid4().hex[:10]}")
        return {"admin": added.admin_email, "member": added.member_email}


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    served = Served()
    app = app_for(served.url, tmp_path_factory.mktemp("e2e") / "app.db")
    served.start(app)
    yield LiveApp(served.url, app)
    served.stop()
    close(app)


# -- CRM Ventas' side: its pages on another origin, its login token ---------------------------
ADMIN_TOKEN = "e2e-crm-admin-token-0123456789"  # CRM Ventas' X-Admin-Token


def html_page(html: str, **values: str):
    """A WSGI app answering `html` on every path, each `__NAME__` in it replaced by values[NAME]
    as a JavaScript literal."""
    for name, value in values.items():
        html = html.replace(f"__{name}__", json.dumps(value))
    body = html.encode()

    def page(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return page


@dataclass
class CrmStack:
    """The API (with its in-app sandbox) and CRM Ventas' origin, which the API allows."""

    api: str
    crm: str  # CRM Ventas' origin: another port of 127.0.0.1 (same site, another origin)
    tenant: TenantUsers
    crm_server: Served
    servers: list[Served]
    admin_token: str = ADMIN_TOKEN

    @property
    def login_token(self) -> str:
        """CRM Ventas' own login token for the tenant, exactly: no sub, no iat, user_id a string."""
        return jwt.encode({"user_id": "42", "email": "ana@crm.test", "role": "ceo",
                           "tenant_id": self.tenant.tenant_id, "niche_type": "crm_sales",
                           "exp": datetime.now(UTC) + timedelta(days=7)}, JWT_SECRET, algorithm="HS256")

    def serve_crm_page(self, html: str, **values: str) -> str:
        """Serve `html` (see html_page) at CRM Ventas' origin; that origin."""
        return self.crm_server.start(html_page(html, **values)).url

    def serve_foreign_page(self, html: str, **values: str) -> str:
        """Serve `html` on an origin of another site (localhost, not 127.0.0.1); that origin."""
        served = Served()
        self.servers.append(served)
        return served.start(html_page(html, **values)).url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def crm_stack(tmp_path_factory) -> Iterator[CrmStack]:
    """crm-meta on a live port, with CRM Ventas' origin in CRM_ORIGINS and as FRONTEND_URL, its
    admin token set, and a tenant: one per test module, which serves its own pages on it."""
    api, crm = Served(), Served()
    app = app_for(api.url, tmp_path_factory.mktemp("crm") / "app.db", CRM_ORIGINS=[crm.url],
                  CRM_ADMIN_TOKEN=ADMIN_TOKEN, FRONTEND_URL=crm.url)
    stack = CrmStack(api.url, crm.url, add_tenant(app, f"t{uuid.uuid4().hex[:10]}"), crm, [api, crm])
    api.start(app)
    yield stack
    for served in stack.servers:
        served.stop()
    close(app)


@pytest.fixture
def users(live):
    live.reset_sandbox()
    return live.add_tenant()


# -- the browser -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from npm into tests/e2e/.cache on first use."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed, so axe-core cannot be installed")
        result = subprocess.run(
            [npm, "install", "--prefix", str(CACHE), "--no-save", "--no-package-lock",
             "--no-audit", "--no-fund", "axe-core@4"],
            capture_output=True, text=True, timeout=180, check=False)
        if result.returncode != 0 or not AXE.exists():
            unavailable(f"npm could not install axe-core: {result.stderr.strip()[-300:]}")
    return AXE.read_text(encoding="utf-8")


class Browsing:
    """One test's browser context: screenshots, accessibility checks, request log."""

    def __init__(self, browser, live: LiveApp, name: str, axe: str):
        self.live = live
        self.axe = axe
        self.folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.shots = 0
        self.contexts = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.browser = browser

    def new_page(self, **options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("locale", "en-US")
        context = self.browser.new_context(base_url=self.live.url, **options)
        context.set_default_timeout(15_000)
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def shot(self, page, label: str) -> Path:
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def check_a11y(self, page, label: str) -> None:
        """axe-core on the current page: no serious or critical violation."""
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(self.axe)  # through DevTools: the page's CSP allows no inline script
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
               f"{[n['target'] for n in v['nodes']][:3]}"
               for v in result["violations"] if v["impact"] in {"serious", "critical"}]
        assert not bad, f"accessibility violations on {label} ({page.url}):\n" + "\n".join(bad)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(browser, live, axe_source, request):
    session = Browsing(browser, live, request.node.name, axe_source)
    yield session
    session.close()
    # Every asset is served by the app itself: no CDN, no third-party request.
    foreign = [url for url in session.requests
               if not url.startswith(live.url) and not url.startswith(("data:", "about:"))]
    assert not foreign, f"requests outside the app: {foreign[:5]}"
    assert not session.errors, f"JavaScript errors: {session.errors}"
