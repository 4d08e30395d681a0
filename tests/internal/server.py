"""Serve crm-meta in a process of its own (a stand-in for another worker or host):
`python -m tests.internal.server SETTINGS PORTFILE` builds the app from SETTINGS (JSON), serves it
on a free port of 127.0.0.1 and writes the port to PORTFILE."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


def main(argv: list[str]) -> int:
    settings, portfile = json.loads(argv[0]), Path(argv[1])
    from config import TestingConfig
    from crm_meta.app import create_app

    app = create_app(TestingConfig(**settings))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    # This stand-in host's public URL (paging links are built from API_BASE_URL, never the Host).
    app.config["API_BASE_URL"] = settings.get("API_BASE_URL") or f"http://127.0.0.1:{server.server_port}"
    portfile.write_text(str(server.server_port))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
