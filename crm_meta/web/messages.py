"""Every user-facing text the pages show that is not written in a template.

Messages raised deep in the domain (``AppError`` and friends) are plain English strings declared
once, where they are raised or on their error class, marked with ``N_`` (crm_meta.infra.i18n) so
that ``pybabel extract`` puts them in the catalogue; `crm_meta.http.errors.error_response`
translates them with ``gettext`` when it renders a page.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

# Why the callback sent the browser back to step 1 (`?error=<code>`).
CALLBACK_ERRORS = {
    "oauth_denied": _l("You cancelled at Meta, so nothing was connected. You can try again "
                       "whenever you are ready."),
    "invalid_state": _l("This connection attempt expired or was started in another browser "
                        "window. Please start again."),
    "meta_error": _l("Meta returned an error while connecting. Please try again in a few "
                     "minutes."),
    "invalid_request": _l("Meta sent back an incomplete answer. Please try again."),
    "meta_reauth_required": _l("Meta asked you to log in again. Please connect once more."),
    "meta_throttled": _l("Meta is receiving too many requests right now. Please try again in "
                         "a few minutes."),
    "meta_unavailable": _l("Meta is not answering right now. Please try again in a few "
                           "minutes."),
    "meta_permission_missing": _l("A permission the CRM needs was not granted. Please connect "
                                  "again and keep every permission checked."),
    "meta_app_misconfigured": _l("The Meta app is misconfigured, so nobody can connect right "
                                 "now. An operator must fix it; please try again later."),
}
CALLBACK_ERROR_FALLBACK = _l("Something went wrong while connecting to Meta. Please try again.")


def callback_error(code: str | None) -> str | None:
    """The translated explanation for a callback error code (never the raw code)."""
    if not code:
        return None
    return str(CALLBACK_ERRORS.get(code, CALLBACK_ERROR_FALLBACK))


def translated(message: str) -> str:
    """A domain message in the user's language (falls back to the English text)."""
    return gettext(message)
