"""The app's long-lived collaborators (cipher, clock, Graph client), built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from crm_meta.clock import SandboxClock, SystemClock
from crm_meta.crypto import TokenCipher
from crm_meta.meta.governor import build_governor
from crm_meta.meta.graph import GraphClient


@dataclass
class Runtime:
    cipher: TokenCipher
    clock: SystemClock | SandboxClock
    graph: GraphClient


def build_runtime(config) -> Runtime:
    """Wire the collaborators from configuration; no network I/O happens here."""
    if config["META_MODE"] == "sandbox":
        clock = SandboxClock(config["META_GRAPH_URL"], ttl=config["SANDBOX_CLOCK_TTL"],
                             control_token=config.get("SANDBOX_CONTROL_TOKEN") or "")
    else:
        clock = SystemClock()
    graph = GraphClient(
        base_url=config["META_GRAPH_URL"],
        version=config["META_GRAPH_API_VERSION"],
        app_id=config["META_APP_ID"],
        app_secret=config["META_APP_SECRET"],
        timeout=config["META_HTTP_TIMEOUT"],
        max_retries=config["META_HTTP_RETRIES"],
        clock=clock,
    )
    graph.governor = build_governor(config, clock)  # one per app; shared via Redis when set
    cipher = TokenCipher(config["ENCRYPTION_KEY"], config["ENCRYPTION_KEYS_PREVIOUS"])
    return Runtime(cipher=cipher, clock=clock, graph=graph)


def runtime() -> Runtime:
    """The current app's Runtime (views pass its parts into services)."""
    return current_app.extensions["crm_meta"]


def token_store():
    from crm_meta.meta.store import TokenStore

    return TokenStore(runtime().cipher)


def now():
    """Domain time: the sandbox's clock in sandbox mode, real UTC otherwise."""
    return runtime().clock.now()
