"""Meta sandbox: an in-memory emulator of Meta's login dialog and Graph API.

Same paths, shapes, status codes and error bodies as Meta (see
shared/docs/meta-graph-reference.md), under one base URL serving both the dialog and the
Graph API, plus `/_sandbox/...` control endpoints for tests. Never served in production.
"""

from .fixtures import USER_WITH_BUSINESSES, USER_WITHOUT_ASSETS, USER_WITHOUT_BUSINESSES
from .server import LiveServer, create_blueprint, create_sandbox_app, run_standalone, serve_in_thread
from .state import Sandbox

__all__ = [
    "USER_WITHOUT_ASSETS",
    "USER_WITHOUT_BUSINESSES",
    "USER_WITH_BUSINESSES",
    "LiveServer",
    "Sandbox",
    "create_blueprint",
    "create_sandbox_app",
    "run_standalone",
    "serve_in_thread",
]
