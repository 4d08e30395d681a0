"""The login dialog: `{base}/{version}/dialog/oauth`, its consent page and its redirects."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import redirect, render_template, request, url_for

from .config import PRODUCT_SCOPES
from .graph import resolve_version
from .tokens import CodeRecord, Grant

PERMISSIONS = {
    "public_profile": "Your name and profile picture",
    "email": "Your email address",
    "ads_management": "Manage your ads and ad accounts",
    "ads_read": "Read the performance of your ads",
    "business_management": "Manage your business portfolios and their assets",
    "whatsapp_business_management": "Manage your WhatsApp Business accounts",
    "whatsapp_business_messaging": "Send and receive WhatsApp messages",
    "pages_show_list": "Show a list of the Pages you manage",
    "pages_read_engagement": "Read content posted on your Pages",
    "pages_manage_metadata": "Manage settings of your Pages",
    "pages_manage_posts": "Publish content on your Pages",
    "pages_manage_ads": "Manage ads of your Pages",
    "read_insights": "Read insights of your Pages and apps",
    "leads_retrieval": "Retrieve leads from your lead ads",
    "catalog_management": "Manage your product catalogues",
    "instagram_basic": "Read your Instagram profile and media",
    "pages_messaging": "Send and receive messages as your Pages",
    "instagram_manage_messages": "Send and receive Instagram Direct messages",
    "instagram_manage_comments": "Manage comments on your Instagram media",
}


class DialogError(Exception):
    """The dialog refuses the request: shown as Meta shows it, an error page."""

    def __init__(self, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status


@dataclass
class DialogRequest:
    """The validated query string of one dialog visit."""

    version: str
    redirect_uri: str
    state: str | None
    scopes: list[str]
    config_id: str | None
    auth_type: str | None
    return_scopes: bool
    sdk: bool = False  # opened by the JavaScript SDK: its code is exchanged with no redirect_uri


def _split_scopes(raw: str) -> list[str]:
    scopes = [s for s in raw.replace(",", " ").split() if s]
    return list(dict.fromkeys(scopes))


def parse(sandbox, version: str, args) -> DialogRequest:
    """Validate like Meta: unknown app or unregistered redirect_uri never redirect."""
    served = resolve_version(version)
    if served is None:
        raise DialogError("This page isn't available", "The link you followed may be broken.", 404)
    client_id = args.get("client_id")
    if not client_id:
        raise DialogError("Error", "The parameter app_id is required")
    if client_id != sandbox.app_id:
        raise DialogError("Invalid App ID", "The provided app ID does not look like a valid app ID.")
    redirect_uri = args.get("redirect_uri")
    sdk = sdk_redirect(redirect_uri)
    if not redirect_uri or (redirect_uri not in sandbox.redirect_uris and not sdk):
        raise DialogError(
            "URL blocked",
            "This redirect failed because the redirect URI is not whitelisted in the app's "
            "Client OAuth Settings. Make sure Client and Web OAuth Login are on and add all "
            "your app domains as Valid OAuth Redirect URIs.",
        )
    response_type = set((args.get("response_type") or "code").replace(",", " ").split())
    if "code" not in response_type or not response_type <= {"code", "granted_scopes"}:
        raise DialogError("Error", "The Meta sandbox supports only response_type=code.")
    # Meta's web dialog silently drops code_challenge and code_challenge_method (PKCE exists
    # only in its OIDC flow): they are accepted here and forgotten.
    config_id = args.get("config_id") or None
    scopes = list(PRODUCT_SCOPES) if config_id else _split_scopes(args.get("scope") or "")
    unknown = [s for s in scopes if s not in PERMISSIONS]
    if unknown:
        raise DialogError(
            "Invalid Scopes",
            f"Invalid Scopes: {', '.join(unknown)}. This message is only shown to developers.",
        )
    if "public_profile" not in scopes:
        scopes.insert(0, "public_profile")
    return DialogRequest(
        version=served,
        redirect_uri=redirect_uri,
        state=args.get("state"),
        scopes=scopes,
        config_id=config_id,
        auth_type=args.get("auth_type"),
        return_scopes=(args.get("return_scopes") or "").lower() == "true",
        sdk=sdk,
    )


def sdk_redirect(redirect_uri: str | None) -> bool:
    """The JavaScript SDK's own return page (its `xd_arbiter`), which hands the code to the page
    that called FB.login; Meta accepts it for the SDK without a registered redirect URI."""
    own = url_for(".sdk_xd_arbiter", _external=True)
    return bool(redirect_uri) and (redirect_uri == own or redirect_uri.startswith(own + "?"))


def _to_redirect_uri(redirect_uri: str, params: list[tuple[str, str]]):
    joiner = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{joiner}{urlencode(params)}#_=_", code=302)


def _error_page(err: DialogError):
    return (
        render_template(
            "sandbox/error.html",
            title=err.title,
            message=err.message,
            stylesheet=url_for(".stylesheet"),
        ),
        err.status,
    )


def view(sandbox, version: str | None = None):
    """GET shows the consent page; POST applies the user's decision."""
    version = version or sandbox.config["default_version"]
    try:
        dialog = parse(sandbox, version, request.args)
        if request.method == "GET":
            return _consent_page(sandbox, dialog)
        return _decide(sandbox, dialog, request.form)
    except DialogError as err:
        return _error_page(err)


def _chosen_businesses(sandbox, user_id: str, form) -> frozenset[str] | None:
    """The businesses the user shared (form field `business_id`, repeated); None: all of them.
    Meta lets a user grant a permission for only some of their businesses."""
    if "business_id" not in form:
        return None
    own = set(sandbox.fixtures.user_businesses.get(user_id, []))
    chosen = set(form.getlist("business_id"))
    if not chosen <= own:
        raise DialogError("Error", "Unknown business for this test user.")
    return frozenset(chosen)


def _consent_page(sandbox, dialog: DialogRequest):
    users = sandbox.users()
    return render_template(
        "sandbox/consent.html",
        app_name=sandbox.config["app_name"],
        app_id=sandbox.app_id,
        version=dialog.version,
        permissions=[(s, PERMISSIONS[s]) for s in dialog.scopes],
        config_id=dialog.config_id,
        rerequest=dialog.auth_type == "rerequest",
        reauthorize=dialog.auth_type == "reauthorize",
        users=users,
        redirect_uri=dialog.redirect_uri,
        action=request.script_root + request.full_path,
        stylesheet=url_for(".stylesheet"),
    )


def _decide(sandbox, dialog: DialogRequest, form):
    user_id = form.get("user_id") or sandbox.first_user_id()
    if user_id not in sandbox.fixtures.users:
        raise DialogError("Error", "Unknown test user.")
    decision = form.get("decision") or "approve"
    if decision == "cancel":
        params = [
            ("error", "access_denied"),
            ("error_code", "200"),
            ("error_description", "Permissions error"),
            ("error_reason", "user_denied"),
        ]
        if dialog.state is not None:
            params.append(("state", dialog.state))
        return _to_redirect_uri(dialog.redirect_uri, params)
    if decision != "approve":
        raise DialogError("Error", "decision must be approve or cancel.")
    businesses = _chosen_businesses(sandbox, user_id, form)
    with sandbox.lock:
        store = sandbox.store
        if dialog.config_id:
            grant = Grant(user_id=user_id, granted=set(dialog.scopes), business_ids=businesses)
            kind = "SYSTEM_USER"
        else:
            requested = set(dialog.scopes)
            if "granted" in form:
                chosen = set(form.getlist("granted"))
            elif form.get("consent_form"):
                chosen = set()  # the page was submitted with every box unchecked
            else:
                chosen = requested  # a scripted POST without checkboxes keeps them all
            previous = store.user_grant(user_id)
            # Without auth_type=rerequest Meta does not ask again for declined permissions.
            kept_declined = set()
            if previous is not None and dialog.auth_type != "rerequest":
                kept_declined = previous.declined & requested
            granted = ((requested & chosen) - kept_declined) | {"public_profile"}
            grant = store.record_consent(user_id, granted, requested - granted,
                                         sandbox.data_access_until(), businesses)
            kind = "USER"
        code = store.issue_code(
            CodeRecord(
                user_id=user_id,
                grant=grant,
                kind=kind,
                # An SDK code is exchanged with an empty redirect_uri, a dialog code with its own.
                redirect_uri="" if dialog.sdk else dialog.redirect_uri,
                created_at=sandbox.now(),
            )
        )
        params = [("code", code)]
        if dialog.return_scopes:
            params.append(("granted_scopes", ",".join(sorted(grant.granted))))
            params.append(("denied_scopes", ",".join(sorted(grant.declined))))
    if dialog.state is not None:
        params.append(("state", dialog.state))
    return _to_redirect_uri(dialog.redirect_uri, params)
