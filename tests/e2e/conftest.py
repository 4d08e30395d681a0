"""Browser tests: the app (with its in-app Meta sandbox) on a live port, driven by Chromium.

One browser per session, a fresh context per test. Chromium and axe-core are found or
installed here; when one is missing the tests skip with the reason, or fail when the
environment sets REQUIRE_BROWSER=1 (CI does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from crm_meta.app import create_app
from crm_meta.infra.database import db
from tests.helpers.settings import testing_config
from tests.helpers.users import add_tenant

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
    # Bind first (port 0 = a free one), then build the app for that exact address.
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    base = f"http://127.0.0.1:{server.port}"
    database = tmp_path_factory.mktemp("e2e") / "app.db"
    app = create_app(testing_config(
        f"{base}/sandbox/meta", f"sqlite:///{database}",
        API_BASE_URL=base, META_REDIRECT_URI=f"{base}/crm/auth/meta/callback",
        WTF_CSRF_ENABLED=True))
    with app.app_context():
        db.create_all()
    server.app = app
    thread = threading.Thread(target=server.serve_forever, name="e2e-app", daemon=True)
    thread.start()
    yield LiveApp(base, app)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


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
