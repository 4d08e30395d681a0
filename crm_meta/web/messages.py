"""Every user-facing text the pages show that is not written in a template.

Messages raised deep in the domain (``AppError`` and friends) are plain English strings that
`crm_meta.http.errors.error_response` translates with ``gettext`` when it renders a page; they are
listed here with ``N_`` so that ``pybabel extract`` puts them in the catalogue.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l


def N_(text: str) -> str:  # the conventional name the extractor looks for
    """Mark a string for extraction without translating it here."""
    return text


# Raised by crm_meta.http.errors, crm_meta.auth and crm_meta.meta, rendered by errors.html.
DOMAIN_MESSAGES = (
    N_("Bad request"),
    N_("Authentication required"),
    N_("You are not allowed to do this"),
    N_("Not found"),
    N_("Invalid input"),
    N_("Method not allowed"),
    N_("Request too large"),
    N_("Unsupported media type"),
    N_("Too many requests; slow down"),
    N_("Invalid or expired OAuth state"),
    N_("The Meta authorization was cancelled"),
    N_("Not one of this tenant's Meta assets"),
    N_("This tenant has no Meta connection"),
    N_("Meta returned an error"),
    N_("Meta is rate limiting this connection; retry later"),
    N_("The Meta connection must be reconnected"),
    N_("A Meta permission is missing; grant it again"),
    N_("Meta is not answering right now; retry later"),
    N_("The form expired; reload the page and try again"),
    N_("Only a tenant admin can do this"),
    N_("X-Tenant-ID does not match your tenant"),
    N_("The callback carries no authorization code"),
    N_("Meta says the new token is not valid"),
    N_("Meta did not return an access token"),
    N_("The token was issued for another Meta app"),
    N_("No deletion request with this confirmation code"),
    N_("The database is not reachable; retry shortly"),
    N_("The Meta app is misconfigured; an operator must fix its credentials"),
    N_("The Meta connection changed during the check; check it again"),
)

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
