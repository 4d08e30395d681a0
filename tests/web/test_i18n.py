"""English and Spanish: negotiated, switchable, complete, with locale-aware dates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations" / "es" / "LC_MESSAGES" / "messages.po"
# The catalogue must cover the pages, their server-side messages, login and the error pages.
COVERED = re.compile(r"^(crm_meta/|templates/(?!sandbox/))")


def html(response) -> str:
    return response.get_data(as_text=True)


def visible_text(page: str) -> str:
    """What a person reads in <main>: tags, scripts and attribute values removed."""
    body = page.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", body)


def spanish_catalogue():
    with PO.open("rb") as source:
        return read_po(source, locale="es")


def test_every_message_of_the_pages_has_a_spanish_translation():
    catalogue = spanish_catalogue()
    method_map = [("crm_meta/**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                "_l": None, "N_": None}
    missing = []
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=keywords):
        if not COVERED.match(filename):
            continue
        msgid = message if isinstance(message, str) else message[0]
        entry = catalogue.get(msgid)
        strings = [] if entry is None else (
            list(entry.string) if isinstance(entry.string, tuple) else [entry.string])
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(f"{filename}: {msgid}")
    assert not missing, "untranslated:\n" + "\n".join(missing)


def test_accept_language_picks_spanish_for_visitors(client):
    page = html(client.get("/login", headers={"Accept-Language": "es-AR,es;q=0.9,en;q=0.5"}))
    assert '<html lang="es">' in page and "Iniciar sesión" in page and "Contraseña" in page
    page = html(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="en">' in page and "Log in" in page


def test_login_errors_and_flashes_are_translated(client, tenant):
    client.get("/lang/es")
    page = html(client.post("/login", data={"email": tenant.admin_email, "password": "nope"}))
    assert "Correo electrónico o contraseña incorrectos." in page
    page = html(client.post("/login", data={"email": "", "password": ""}))
    assert "Este campo es obligatorio." in page


def test_the_switch_is_remembered_for_the_user(client, auth, tenant):
    auth.login(tenant.admin_email)
    response = client.get("/lang/es?next=/crm/marketing")
    assert response.headers["Location"].endswith("/crm/marketing")
    assert "Meta no está conectado" in html(client.get("/crm/marketing"))
    auth.logout()  # a new session: the saved preference wins over Accept-Language
    auth.login(tenant.admin_email)
    page = html(client.get("/crm/marketing", headers={"Accept-Language": "en"}))
    assert '<html lang="es">' in page


def test_dates_and_numbers_follow_the_locale(connected, client):
    english = visible_text(html(client.get("/crm/marketing")))
    client.get("/lang/es")
    spanish = visible_text(html(client.get("/crm/marketing")))
    assert re.search(r"[A-Z][a-z]+ \d{1,2}, 20\d\d", english)  # e.g. January 27, 2027
    assert re.search(r"\d{1,2} de [a-z]+ de 20\d\d", spanish)  # e.g. 27 de enero de 2027
    assert re.search(r"quedan \d+ días", spanish) and "cuentas publicitarias" in spanish


def _english_leftovers(text: str) -> list[str]:
    """Translated English sentences still present in a Spanish page."""
    leftovers = []
    for message in spanish_catalogue():
        if not message.id or isinstance(message.id, tuple) or "%(" in message.id:
            continue
        if message.string != message.id and len(message.id) > 12 and message.id in text:
            leftovers.append(message.id)
    return leftovers


@pytest.mark.parametrize("path", [
    "/crm/marketing",
    "/crm/marketing/meta/connect",
    "/crm/marketing/meta/connect?error=oauth_denied",
    "/crm/marketing/meta/connect?step=select&business=2010000000000001",
    "/crm/marketing/meta/disconnect",
    "/crm/marketing/no-such-page",
])
def test_spanish_pages_have_no_english_left(path, connected, client):
    client.get("/lang/es")
    response = client.get(path)
    text = visible_text(html(response))
    assert not _english_leftovers(text), path
    assert '<html lang="es">' in html(response)


def test_the_confirmation_step_in_spanish(connected, client):
    client.get("/lang/es")
    page = html(client.get("/crm/marketing/meta/connect?step=select&business=2010000000000001"))
    account = re.findall(r'name="account_id" value="([^"]+)"', page)[0]
    done = html(client.post("/crm/marketing/meta/connect/select",
                            data={"account_id": account, "business_id": "2010000000000001"},
                            follow_redirects=True))
    assert "Listo: Meta está conectado" in done and not _english_leftovers(visible_text(done))


def test_a_language_chosen_on_the_login_page_survives_logging_in(client, auth, tenant):
    client.get("/lang/es")
    auth.login(tenant.admin_email)
    page = html(client.get("/crm/marketing", headers={"Accept-Language": "en"}))
    assert '<html lang="es">' in page


def test_an_unexpected_error_is_a_translated_page_with_an_incident(app, client):
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", boom)
    client.get("/lang/es")
    response = client.get("/boom")
    page = html(response)
    assert response.status_code == 500 and "Algo salió mal por nuestra parte" in page
    assert re.search(r"incidencia [0-9a-f]{12}", page)
    assert "secret internals" not in page and "Traceback" not in page
