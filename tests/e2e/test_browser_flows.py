"""Real-browser journeys: log in, connect at the sandbox's Meta, choose, confirm, disconnect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers.users import PASSWORD

pytestmark = pytest.mark.e2e

ANDINA = "Distribuidora Andina S.A."
ACCOUNT = "Distribuidora · Campañas 009"  # an active account, found by searching
TEXT = {
    "en": {"email": "Email", "password": "Password", "log_in": "Log in", "connect": "Connect Meta",
           "continue": "Continue to Meta", "show": "Show its ad accounts",
           "search": "Search by name or ID", "use": "Use this ad account",
           "hub": "Go to the marketing hub", "connected": "Meta is connected"},
    "es": {"email": "Correo electrónico", "password": "Contraseña", "log_in": "Iniciar sesión",
           "connect": "Conectar Meta", "continue": "Continuar a Meta",
           "show": "Ver sus cuentas publicitarias", "search": "Buscar por nombre o ID",
           "use": "Usar esta cuenta publicitaria", "hub": "Ir al panel de marketing",
           "connected": "Meta está conectado"},
}


def log_in(page, email: str, text: dict) -> None:
    page.get_by_label(text["email"]).fill(email)
    page.get_by_label(text["password"]).fill(PASSWORD)
    page.get_by_role("button", name=text["log_in"]).click()
    expect(page.locator("section.banner")).to_be_visible()


def logged_in_page(browsing, email: str, text: dict):
    """A fresh page, logged in at /login; returns it on the hub."""
    page = browsing.new_page()
    page.goto("/login")
    log_in(page, email, text)
    return page


def approve_at_meta(page, uncheck: tuple[str, ...] = ()) -> None:
    """The sandbox's consent page, answered like a person."""
    page.wait_for_url(re.compile(r"/sandbox/meta/v[\d.]+/dialog/oauth\?"))
    for scope in uncheck:
        page.locator(f'input[name="granted"][value="{scope}"]').uncheck()
    page.locator('button[name="decision"][value="approve"]').click()
    page.wait_for_url(re.compile(r"/crm/marketing/meta/connect\?step=select"))


def choose_account(page, browsing, text: dict, *, check: bool = True, js: bool = True) -> str:
    """Step 3: the business, then the account found with the search box; returns its id."""
    page.get_by_label(ANDINA).check()
    page.get_by_role("button", name=text["show"]).click()
    expect(page.locator("#account-results .option").first).to_be_visible()
    if check:
        browsing.check_a11y(page, "step 3, ad accounts")
    browsing.shot(page, "step3-accounts")
    page.get_by_label(text["search"]).fill("campanas 009")  # accents need not be typed
    if not js:  # without JavaScript the search is a plain GET form
        page.get_by_label(text["search"]).press("Enter")
        page.wait_for_url(re.compile(r"[?&]q=campanas"))
    option = page.locator("#account-results .option", has_text=ACCOUNT)
    expect(option).to_be_visible()
    expect(page.locator("#account-results .option")).not_to_have_count(20)
    radio = option.locator('input[name="account_id"]')
    radio.check()
    browsing.shot(page, "step3-search")
    return radio.get_attribute("value")


def connect(page, browsing, text: dict, *, check: bool = True, js: bool = True) -> str:
    """From the hub to step 4 and back to the hub; returns the chosen account id."""
    page.get_by_role("link", name=text["connect"]).click()
    expect(page.locator('.steps [aria-current="step"]')).to_contain_text("1")
    if check:
        browsing.check_a11y(page, "step 1")
    browsing.shot(page, "step1-connect")
    page.get_by_role("button", name=text["continue"]).click()
    page.wait_for_url(re.compile(r"/dialog/oauth\?"))
    browsing.shot(page, "step2-meta-consent")
    approve_at_meta(page)
    expect(page.locator('.steps [aria-current="step"]')).to_contain_text("3")
    if check:
        browsing.check_a11y(page, "step 3, businesses")
    browsing.shot(page, "step3-businesses")
    account = choose_account(page, browsing, text, check=check, js=js)
    page.get_by_role("button", name=text["use"]).click()
    page.wait_for_url(re.compile(r"step=done"))
    expect(page.locator('.steps [aria-current="step"]')).to_contain_text("4")
    expect(page.get_by_test_id("selected-account")).to_contain_text(ACCOUNT)
    if check:
        browsing.check_a11y(page, "step 4")
    browsing.shot(page, "step4-confirmation")
    page.get_by_role("link", name=text["hub"]).click()
    return account


def assert_connected(page, account: str, text: dict) -> None:
    banner = page.locator("section.banner")
    expect(banner).to_have_attribute("data-status", "connected")
    expect(banner.get_by_role("heading", level=2)).to_have_text(text["connected"])
    expect(page.get_by_test_id("meta-user")).to_have_text("María José Fernández")
    expect(page.get_by_test_id("business")).to_have_text(ANDINA)
    expect(page.get_by_test_id("ad-account")).to_contain_text(ACCOUNT)
    expect(page.get_by_test_id("ad-account")).to_contain_text(account.removeprefix("act_"))


def test_connect_in_english(browsing, users):
    page = browsing.new_page()
    page.goto("/login")
    browsing.check_a11y(page, "login")
    browsing.shot(page, "login")
    log_in(page, users["admin"], TEXT["en"])
    expect(page.locator("section.banner")).to_have_attribute("data-status", "disconnected")
    browsing.check_a11y(page, "hub, disconnected")
    browsing.shot(page, "hub-disconnected")
    account = connect(page, browsing, TEXT["en"])
    assert_connected(page, account, TEXT["en"])
    expect(page.get_by_test_id("expiry")).to_contain_text(re.compile(r"[A-Z][a-z]+ \d+, 20\d\d"))
    browsing.check_a11y(page, "hub, connected")
    browsing.shot(page, "hub-connected")
    # Every page can switch language; the choice sticks.
    page.get_by_role("link", name="Español").click()
    expect(page.locator("section.banner h2")).to_have_text("Meta está conectado")
    page.goto("/crm/marketing/meta/connect")
    expect(page.get_by_role("heading", level=1)).to_have_text("Conecta tu cuenta comercial de Meta")
    browsing.shot(page, "step1-switched-to-spanish")


def test_connect_in_spanish(browsing, users):
    page = browsing.new_page(locale="es-ES")  # Accept-Language picks Spanish
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    browsing.check_a11y(page, "login (es)")
    browsing.shot(page, "login-es")
    log_in(page, users["admin"], TEXT["es"])
    expect(page.locator("section.banner h2")).to_have_text("Meta no está conectado")
    account = connect(page, browsing, TEXT["es"])
    assert_connected(page, account, TEXT["es"])
    expect(page.get_by_test_id("expiry")).to_contain_text(re.compile(r"\d+ de [a-z]+ de 20\d\d"))
    expect(page.get_by_test_id("expiry")).to_contain_text("días")
    browsing.shot(page, "hub-connected-es")


def test_cancel_at_meta_returns_to_step_one(browsing, users):
    page = logged_in_page(browsing, users["admin"], TEXT["en"])
    page.get_by_role("link", name="Connect Meta").click()
    page.get_by_role("button", name="Continue to Meta").click()
    page.wait_for_url(re.compile(r"/dialog/oauth\?"))
    page.locator('button[name="decision"][value="cancel"]').click()
    page.wait_for_url(re.compile(r"/crm/marketing/meta/connect\?error=oauth_denied"))
    expect(page.get_by_role("alert")).to_contain_text("You cancelled at Meta")
    expect(page.locator('.steps [aria-current="step"]')).to_contain_text("1")
    browsing.check_a11y(page, "step 1 with an error")
    browsing.shot(page, "step1-cancelled")
    # The retry goes straight back to Meta.
    page.get_by_role("button", name="Try again at Meta").click()
    page.wait_for_url(re.compile(r"/dialog/oauth\?"))


def test_partial_consent_then_grant_them(browsing, users):
    page = logged_in_page(browsing, users["admin"], TEXT["en"])
    page.get_by_role("link", name="Connect Meta").click()
    page.get_by_role("button", name="Continue to Meta").click()
    approve_at_meta(page, uncheck=("read_insights",))
    expect(page.get_by_text("Some permissions were not granted")).to_be_visible()
    browsing.shot(page, "step3-partial")
    account = choose_account(page, browsing, TEXT["en"], check=False)
    page.get_by_role("button", name="Use this ad account").click()
    page.get_by_role("link", name="Go to the marketing hub").click()
    banner = page.locator("section.banner")
    expect(banner).to_have_attribute("data-status", "partial")
    expect(banner).to_contain_text("read_insights")
    browsing.check_a11y(page, "hub, partial")
    browsing.shot(page, "hub-partial")
    banner.get_by_role("button", name="Grant them").click()
    page.wait_for_url(re.compile(r"auth_type=rerequest"))
    browsing.shot(page, "meta-rerequest")
    approve_at_meta(page)
    # The earlier choice is preselected: confirming keeps it.
    expect(page.locator(f'input[name="account_id"][value="{account}"]')).to_be_checked()
    page.get_by_role("button", name="Use this ad account").click()
    page.get_by_role("link", name="Go to the marketing hub").click()
    assert_connected(page, account, TEXT["en"])
    browsing.shot(page, "hub-connected")


def test_disconnect_with_confirmation(browsing, users):
    page = logged_in_page(browsing, users["admin"], TEXT["en"])
    connect(page, browsing, TEXT["en"], check=False)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".flash.success")).to_contain_text("Meta confirmed")
    page.get_by_role("link", name="Disconnect").click()
    expect(page.get_by_role("heading", name="Disconnect Meta?")).to_be_visible()
    browsing.check_a11y(page, "disconnect confirmation")
    browsing.shot(page, "disconnect-confirm")
    page.get_by_role("button", name="Yes, disconnect").click()
    expect(page.locator(".flash.success")).to_contain_text("Meta has been disconnected")
    expect(page.locator("section.banner")).to_have_attribute("data-status", "disconnected")
    browsing.shot(page, "hub-disconnected")


def test_members_see_state_without_admin_buttons(browsing, users):
    admin = logged_in_page(browsing, users["admin"], TEXT["en"])
    connect(admin, browsing, TEXT["en"], check=False)
    page = logged_in_page(browsing, users["member"], TEXT["en"])
    banner = page.locator("section.banner")
    expect(banner).to_have_attribute("data-status", "connected")
    expect(page.get_by_test_id("ad-account")).to_contain_text(ACCOUNT)
    expect(banner.get_by_role("link", name="Disconnect")).to_have_count(0)
    expect(banner.get_by_role("link", name="Change ad account")).to_have_count(0)
    browsing.check_a11y(page, "hub, member")
    browsing.shot(page, "hub-member")


def test_works_without_javascript_at_360px(browsing, users):
    page = browsing.new_page(java_script_enabled=False, viewport={"width": 360, "height": 740})
    page.goto("/login")
    log_in(page, users["admin"], TEXT["en"])
    account = connect(page, browsing, TEXT["en"], check=False, js=False)
    assert_connected(page, account, TEXT["en"])
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360, f"the hub scrolls sideways at 360 px ({width} px wide)"
    browsing.shot(page, "hub-360px")


def test_keyboard_only(browsing, users):
    page = browsing.new_page()
    page.goto("/login")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    log_in(page, users["admin"], TEXT["en"])
    page.goto("/crm/marketing/meta/connect")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Continue to Meta":
            break
    else:
        pytest.fail("Continue to Meta cannot be reached with the Tab key")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focused button shows no focus ring"
    browsing.shot(page, "step1-keyboard-focus")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dialog/oauth\?"))
