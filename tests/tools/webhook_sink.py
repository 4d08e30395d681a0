"""A webhook receiver on a live port: records what the keep-alive's and the outbox's notices
(and Meta's forwarded events) POST, and answers with the statuses a test queues (then
`status`). Receivers verify with the `standardwebhooks` library, as the CRM would."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookSink:
    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []  # answers to give, in order; then `status`
        self.status = 200
        self.hits = 0  # every POST, answered or refused
        self._hits = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._hits:
                    sink.hits += 1
                    status = sink.statuses.pop(0) if sink.statuses else sink.status
                if status < 300:
                    sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/meta"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def delivery_ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
