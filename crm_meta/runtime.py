"""The composition root: every long-lived collaborator of one app, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from config import in_app_sandbox_url
from crm_meta import notify
from crm_meta.infra.clock import Clock, InAppSandboxClock, SandboxClock, SystemClock
from crm_meta.infra.crypto import TokenCipher
from crm_meta.meta import exchange
from crm_meta.meta.connections import ConnectFlow
from crm_meta.meta.governor import build_governor
from crm_meta.meta.graph import GraphClient
from crm_meta.meta.keepalive import verdicts
from crm_meta.meta.oauth import MetaDialog, meta_dialog
from crm_meta.meta.proxy import Gateway
from crm_meta.meta.settings import MetaSettings
from crm_meta.meta.store import TokenStore
from crm_meta.meta.webhooks.worker import WebhookWorker
from crm_meta.notify import Notifier
from meta_sandbox import Sandbox

KEY = "crm_meta"  # our one entry in app.extensions


@dataclass
class Runtime:
    cipher: TokenCipher
    clock: Clock  # SystemClock, InAppSandboxClock or SandboxClock: `now()` without I/O in-app
    graph: GraphClient
    meta: MetaSettings  # the Meta app, its Graph version and client manners, what it asks for
    keepalive: verdicts.Settings  # what a sweep and a check need
    store: TokenStore  # the one place tokens are encrypted and read
    dialog: MetaDialog  # Authlib's client for Meta's login dialog
    connect: ConnectFlow  # the OAuth connect flow both front ends drive
    gateway: Gateway  # the services' Graph proxy (the internal API and the drop-in /graph)
    notifier: Notifier  # channels and this process's sender thread for the outbox
    webhooks: WebhookWorker  # Meta's webhooks: routing the inbox, forwarding events to the CRM
    sandbox: Sandbox | None = None  # the in-app sandbox (META_MODE=sandbox), mounted by create_app
    limiter: Any = None  # Flask-Limiter, set once ratelimits has wrapped the endpoints


def build_runtime(app: Flask) -> Runtime:
    """Wire the collaborators from the app's configuration; no network I/O happens here."""
    config = app.config
    sandbox = None
    if config["META_MODE"] == "sandbox":
        sandbox = Sandbox(config["META_APP_ID"], config["META_APP_SECRET"], [config["META_REDIRECT_URI"]])
    if sandbox is not None and config["META_GRAPH_URL"] == in_app_sandbox_url(config["API_BASE_URL"]):
        clock = InAppSandboxClock(sandbox)
    elif config["META_MODE"] == "sandbox":  # a standalone sandbox elsewhere: over HTTP, cached
        clock = SandboxClock(config["META_GRAPH_URL"], ttl=config["SANDBOX_CLOCK_TTL"],
                             control_token=config["SANDBOX_CONTROL_TOKEN"])
    else:
        clock = SystemClock()
    meta = MetaSettings.from_config(config)  # settings read once; config.py holds their defaults
    graph = GraphClient(meta, clock=clock)
    graph.governor = build_governor(meta, clock)  # one per app; shared via Redis when set
    cipher = TokenCipher(config["ENCRYPTION_KEY"], config["ENCRYPTION_KEYS_PREVIOUS"])
    store = TokenStore(cipher)
    keepalive = verdicts.Settings.from_config(config)
    dialog = meta_dialog(meta)
    notifier = Notifier(config, app=app, clock=clock)
    connect = ConnectFlow(dialog, graph, store, clock, exchange.Settings(
        required=list(meta.scopes), config_id=meta.login_config_id, outbox=keepalive.outbox))
    gateway = Gateway(graph, store, clock, meta, keepalive,
                      on_notices=lambda notices: notify.dispatch(notifier, notices))
    return Runtime(cipher=cipher, clock=clock, graph=graph, store=store, meta=meta, keepalive=keepalive,
                   dialog=dialog, notifier=notifier, connect=connect, gateway=gateway,
                   webhooks=WebhookWorker(app, cipher=cipher, store=store, graph=graph, clock=clock),
                   sandbox=sandbox)


def of(app: Flask) -> Runtime:
    """An app's Runtime (jobs, commands and tests that hold the app)."""
    return app.extensions[KEY]


def runtime() -> Runtime:
    """The current app's Runtime (views pass its parts into services)."""
    return current_app.extensions[KEY]


def now():
    """Domain time: the sandbox's clock in sandbox mode, real UTC otherwise."""
    return runtime().clock.now()
