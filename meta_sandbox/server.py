"""Flask wiring: the blueprint, a standalone app, and a threaded live server."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, jsonify, request, url_for
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import control, dialog, sdk, subscriptions
from .config import CURRENT_VERSIONS
from .graph import handle
from .messages import GraphRequest
from .state import Sandbox

_HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = _HERE / "templates"  # the sandbox's own pages (sandbox/...)
_CSS = _HERE / "sandbox.css"
_log = logging.getLogger(__name__)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def _params() -> dict[str, str]:
    params = {k: v for k, v in request.args.items()}
    if request.method != "GET":
        params.update(request.form.items())
        body = request.get_json(silent=True) if request.is_json else None
        if isinstance(body, dict):
            params.update({k: v if isinstance(v, str) else str(v) for k, v in body.items()})
    return params


def create_blueprint(sandbox: Sandbox, name: str = "sandbox") -> Blueprint:
    """A new blueprint serving the dialog, the Graph API and /_sandbox control routes."""
    bp = Blueprint(name, __name__, template_folder=str(TEMPLATES_DIR))

    def base_url() -> str:
        return url_for(".index", _external=True).rstrip("/")

    def graph_call(path: str) -> Response:
        req = GraphRequest(
            method=request.method,
            path="/" + path,
            params=_params(),
            query=list(request.args.items(multi=True)),
            bearer=_bearer(),
            base_url=base_url(),
        )
        result = handle(sandbox, req)
        return Response(result.text, status=result.status, headers=result.headers)

    @bp.route("/", methods=["GET", "POST"])
    def index():
        """GET describes the sandbox; POST is an unversioned Graph batch call."""
        if request.method == "POST":
            return graph_call("")
        return jsonify(
            {
                "sandbox": "Meta sandbox (not Facebook)",
                "app_id": sandbox.app_id,
                "versions": list(CURRENT_VERSIONS),
                "dialog": f"{base_url()}/{sandbox.config['default_version']}/dialog/oauth",
                "graph": f"{base_url()}/{sandbox.config['default_version']}",
                "users": sandbox.users(),
            }
        )

    @bp.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def graph(path: str):
        """Every Graph API path (versioned or not)."""
        return graph_call(path)

    @bp.route("/<version>/dialog/oauth", methods=["GET", "POST"])
    def dialog_versioned(version: str):
        """The login dialog with a version prefix."""
        return dialog.view(sandbox, version)

    @bp.route("/dialog/oauth", methods=["GET", "POST"])
    def dialog_unversioned():
        """The login dialog without a version (Meta uses the app's default)."""
        return dialog.view(sandbox)

    @bp.get("/_sandbox/sandbox.css")
    def stylesheet():
        """The sandbox pages' stylesheet (served here: no inline styles)."""
        return Response(_CSS.read_text(encoding="utf-8"), mimetype="text/css")

    control.register(bp, sandbox)
    subscriptions.register(bp, sandbox)
    sdk.register(bp, sandbox)
    return bp


def create_sandbox_app(app_id, app_secret, redirect_uri, **config) -> Flask:
    """A standalone app serving the sandbox at its root; the Sandbox is in extensions."""
    app = Flask("meta_sandbox", template_folder=str(TEMPLATES_DIR), static_folder=None)
    redirect_uris = [redirect_uri] if isinstance(redirect_uri, str) else list(redirect_uri)
    sandbox = Sandbox(app_id, app_secret, redirect_uris, **config)
    app.register_blueprint(create_blueprint(sandbox))
    app.extensions["meta_sandbox"] = sandbox
    return app


class _RequestHandler(WSGIRequestHandler):
    """Logs method, path and status only: query strings carry tokens, codes and secrets."""

    quiet = False

    def log_request(self, code="-", size="-") -> None:
        if self.quiet:
            return
        path = self.path.split("?", 1)[0]
        _log.info('%s "%s %s" %s', self.address_string(), self.command, path, code)


class _QuietRequestHandler(_RequestHandler):
    quiet = True


@dataclass
class LiveServer:
    """A running threaded server: its base URL, port and a way to stop it."""

    url: str
    port: int
    server: BaseWSGIServer
    thread: threading.Thread

    def shutdown(self) -> None:
        """Stop serving, wait for the thread and close the socket."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def serve_in_thread(flask_app: Flask, host: str = "127.0.0.1", port: int = 0) -> LiveServer:
    """Serve an app with threads in a daemon thread (port 0: a free port)."""
    server = make_server(host, port, flask_app, threaded=True, request_handler=_QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="meta-sandbox", daemon=True)
    thread.start()
    real_port = server.server_port
    return LiveServer(url=f"http://{host}:{real_port}", port=real_port, server=server, thread=thread)


def run_standalone(host: str, port: int, app_id: str, app_secret: str, redirect_uri: str,
                   control_token: str = "") -> None:
    """Serve the sandbox on its own until interrupted (threaded; used by the CLI)."""
    app = create_sandbox_app(app_id, app_secret, redirect_uri)
    app.config["SANDBOX_CONTROL_TOKEN"] = control_token  # else /_sandbox/* is loopback-only
    if not _log.handlers:  # an access log on the console, paths only (no query strings)
        _log.addHandler(logging.StreamHandler())
        _log.setLevel(logging.INFO)
        _log.propagate = False  # the app's own log handler would print each line twice
    server = make_server(host, port, app, threaded=True, request_handler=_RequestHandler)
    print(f"Meta sandbox on http://{host}:{server.server_port} (app {app_id}); Ctrl+C stops it")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
