"""crm-meta: connect a CRM tenant's Meta (Facebook) business account, end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import Flask, current_app, request, session
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, ConfigError, config_from_env, engine_options
from crm_meta.extensions import babel, csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent
# Sent on every response. No form-action: the wizard's form ends in a redirect to Meta.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # the callback's URL carries a code: never send it on
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'self'; frame-ancestors 'none'",
}


def create_app(config: Config | None = None) -> Flask:
    """Build the app from a config object (from the environment when none is given)."""
    if config is None:
        from dotenv import load_dotenv

        load_dotenv(ROOT / ".env")
        config = config_from_env()
        if config.TESTING:  # CSRF off, cheap hashes: for the test suite's own configs only
            raise ConfigError("APP_ENV=testing is for the test suite; serve with development or production")
    instance = Path(config.INSTANCE_PATH or ROOT / "instance")
    if config.APP_ENV != "production":
        from crm_meta.local_secrets import fill_missing

        # Tests get fresh secrets per process; development keeps them in instance/.
        fill_missing(config, instance, persist=not config.TESTING)
    config.validate()
    from crm_meta import logredact

    # Before anything can log: no secret reaches a log line, whoever writes it (tests too).
    logredact.install(config.META_APP_SECRET, config.SECRET_KEY, config.JWT_SECRET_KEY,
                      config.ENCRYPTION_KEY, *config.ENCRYPTION_KEYS_PREVIOUS,
                      config.NOTIFY_WEBHOOK_SECRET, config.SMTP_PASSWORD)
    _configure_logging(config)
    logredact.install()  # again: the handler just configured gets the filter too
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"), instance_path=str(instance))
    app.config.from_object(config)
    from crm_meta.auth.sessions import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'crm_meta.db'}"
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "translations"))
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"],
                                x_proto=app.config["TRUSTED_PROXIES"],
                                x_host=app.config["TRUSTED_PROXIES"])
    _init_extensions(app)
    _register_blueprints(app)
    from crm_meta.api import PUBLIC
    from crm_meta.auth.edge import init_cors

    init_cors(app, PUBLIC)
    from crm_meta import ratelimits

    ratelimits.init_app(app)  # after the blueprints: it wraps their endpoints
    from crm_meta.errors import register_error_handlers

    register_error_handlers(app)

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if app.config["HSTS"]:
            response.headers.setdefault("Strict-Transport-Security", app.config["HSTS"])
        return response

    from crm_meta.cli import register_cli

    register_cli(app)
    from crm_meta.meta.versions import warn_about_version

    warn_about_version(app.config["META_GRAPH_API_VERSION"], logging.getLogger("crm_meta"))
    # The sweep runs where the app serves (gunicorn); a `flask ...` command loads the app
    # inside a click context and never starts one, whatever SCHEDULER_ENABLED says.
    if app.config["SCHEDULER_ENABLED"] and click.get_current_context(silent=True) is None:
        from crm_meta import jobs

        jobs.start(app)
    return app


def _configure_logging(config) -> None:
    """Log lines to stderr for servers and commands, unless something else set logging up."""
    root = logging.getLogger()
    if config.TESTING or root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    logging.getLogger("crm_meta").setLevel(config.LOG_LEVEL)


def _select_locale():
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if not chosen and current_user and current_user.is_authenticated:
        chosen = current_user.locale
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or "en"


def _init_extensions(app: Flask) -> None:
    from crm_meta import dbreads
    from crm_meta.auth.tenancy import load_session_user
    from crm_meta.meta.oauth import init_oauth
    from crm_meta.runtime import build_runtime

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    db.init_app(app)
    dbreads.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None

    login_manager.user_loader(load_session_user)
    babel.init_app(app, locale_selector=_select_locale)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "en")
    app.extensions["crm_meta"] = build_runtime(app.config)
    init_oauth(app)


def _register_blueprints(app: Flask) -> None:
    from crm_meta import api, auth, callbacks, internal, ops, web

    for blueprint in (ops.bp, auth.bp, api.bp, callbacks.bp, web.bp, internal.bp):
        app.register_blueprint(blueprint)
    if app.config["META_MODE"] == "sandbox":
        from crm_meta.sandbox import Sandbox, create_blueprint

        sandbox = Sandbox(app.config["META_APP_ID"], app.config["META_APP_SECRET"],
                          [app.config["META_REDIRECT_URI"]])
        blueprint = create_blueprint(sandbox)
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint, url_prefix="/sandbox/meta")
        app.extensions["meta_sandbox"] = sandbox
