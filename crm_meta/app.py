"""The application factory: configuration, extensions, the composition root, blueprints, error
handlers and commands. Wiring only."""

from __future__ import annotations

import logging
from inspect import CO_COROUTINE
from pathlib import Path
from types import FunctionType, MethodType
from typing import Any

from dotenv import load_dotenv
from flask import Flask, current_app, request, session
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, ConfigError, config_from_env
from crm_meta import api, auth, callbacks, channels, gateway, internal, web, webhooks
from crm_meta.auth import ratelimits
from crm_meta.auth.edge import init_cors
from crm_meta.auth.sessions import CookieSessionInterface
from crm_meta.auth.tenancy import load_session_user
from crm_meta.cli import register_cli
from crm_meta.http import bodies, graph_errors
from crm_meta.http.errors import register_error_handlers
from crm_meta.http.extensions import babel, csrf, login_manager, migrate
from crm_meta.infra import dbreads
from crm_meta.infra.database import db, engine_options
from crm_meta.infra.local_secrets import fill_missing
from crm_meta.meta.versions import warn_about_version
from crm_meta.ops import logs, redaction
from crm_meta.ops import views as ops
from crm_meta.runtime import KEY, build_runtime
from meta_sandbox import create_blueprint as sandbox_blueprint

ROOT = Path(__file__).resolve().parent.parent
# Sent on every response. No form-action: the wizard's form ends in a redirect to Meta.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # the callback's URL carries a code: never send it on
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'self'; frame-ancestors 'none'",
}


class CrmMetaFlask(Flask):
    """Flask, asking plain functions and methods whether they are coroutines by their code flag.

    Flask passes every hook and view of every request through `ensure_sync` (sixteen for a
    status read), which asks `inspect.iscoroutinefunction` each time: ~0.7 µs a call, with
    no async view in this app. For a plain function or bound method the answer is its code's
    CO_COROUTINE flag (what `inspect` reads for them too); anything else (a partial, a callable
    object, an `async def`) goes to Flask's own `ensure_sync`, unchanged. (Python 3.12's
    `inspect.markcoroutinefunction` marks a plain function: nothing in the app uses it.)"""

    def ensure_sync(self, func: Any) -> Any:
        if type(func) in _PLAIN:
            code = getattr(func, "__code__", None)
            if code is not None and not code.co_flags & CO_COROUTINE:
                return func
        return super().ensure_sync(func)


_PLAIN = (FunctionType, MethodType)


def create_app(config: Config | None = None) -> Flask:
    """Build the app from a config object (from the environment when none is given).

    Wiring only: no logging handlers and no scheduler here. The serving entry point sets
    them up (wsgi.py and gunicorn.conf.py; `flask jobs run` for a dedicated job process).
    """
    if config is None:
        load_dotenv(ROOT / ".env")
        config = config_from_env()
        if config.TESTING:  # CSRF off, cheap hashes: for the test suite's own configs only
            raise ConfigError("APP_ENV=testing is for the test suite; serve with development or production")
    instance = Path(config.INSTANCE_PATH or ROOT / "instance")
    if config.APP_ENV != "production":
        # Tests get fresh secrets per process; development keeps them in instance/.
        fill_missing(config, instance, persist=not config.TESTING)
    config.validate()
    # Before anything can log: no secret reaches a log line, whoever writes it (tests too).
    redaction.install(config.META_APP_SECRET, config.SECRET_KEY, config.JWT_SECRET_KEY,
                      config.ENCRYPTION_KEY, *config.ENCRYPTION_KEYS_PREVIOUS,
                      config.NOTIFY_WEBHOOK_SECRET, config.SMTP_PASSWORD)
    app = CrmMetaFlask("crm_meta", template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"), instance_path=str(instance))
    app.config.from_object(config)
    app.session_interface = CookieSessionInterface()
    logs.init_app(app)  # first hooks: every request, even a refused one, gets its id and line
    bodies.init_app(app)  # then bodies: chunked ones bounded, deep JSON a 400, before anything reads them
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'crm_meta.db'}"
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "translations"))
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"],
                                x_proto=app.config["TRUSTED_PROXIES"],
                                x_host=app.config["TRUSTED_PROXIES"])
    _init_extensions(app)
    app.extensions[KEY] = runtime = build_runtime(app)  # the composition root, built once
    _register_blueprints(app, runtime.sandbox)
    init_cors(app, api.PUBLIC)
    runtime.limiter = ratelimits.init_app(app)  # after the blueprints: it wraps their endpoints
    register_error_handlers(app)
    graph_errors.init_app(app)  # the gateway's and the proxy's refusals, re-shaped as Graph's

    defaults = [(name.lower(), name, value) for name, value in SECURITY_HEADERS.items()]
    if app.config["HSTS"]:
        defaults.append(("strict-transport-security", "Strict-Transport-Security", app.config["HSTS"]))

    @app.after_request
    def security_headers(response):
        # What setdefault does, without its cost: werkzeug's Headers raise (and catch) an
        # exception for every absent name looked up; one pass over the present names instead.
        present = {name.lower() for name, _ in response.headers}
        for lowered, name, value in defaults:
            if lowered not in present:
                response.headers.add(name, value)
        return response

    register_cli(app)
    warn_about_version(app.config["META_GRAPH_API_VERSION"], logging.getLogger("crm_meta"))
    return app


def _select_locale():
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if not chosen and current_user and current_user.is_authenticated:
        chosen = current_user.locale
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or "en"


def _init_extensions(app: Flask) -> None:
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


def _register_blueprints(app: Flask, sandbox) -> None:
    for blueprint in (ops.bp, auth.bp, api.bp, channels.bp, callbacks.bp, web.bp, internal.bp, gateway.bp,
                      webhooks.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(webhooks.bp)  # Meta signs its deliveries (X-Hub-Signature-256) instead
    if sandbox is not None:  # the sandbox's single mount point in the product
        blueprint = sandbox_blueprint(sandbox)
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint, url_prefix="/sandbox/meta")
