"""Request bodies every route can trust: a chunked body over MAX_CONTENT_LENGTH is refused with 413
before anything reads it (never truncated to the limit and handed on), and JSON nested deeper
than Python's parser goes is a bad request (400), not a crash."""

from __future__ import annotations

import io

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

_READ = 64 * 1024


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with "nested too deeply" a ValueError: request.get_json answers 400."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def bounded_body() -> None:
    """Read a body sent without Content-Length (chunked) up to the limit: 413 past it; otherwise
    hand it on whole, with its length, so every reader sees exactly what was sent."""
    environ = request.environ
    if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, data = environ["wsgi.input"], bytearray()
    while len(data) <= limit:
        chunk = stream.read(min(_READ, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(bytes(data))
    environ["CONTENT_LENGTH"] = str(len(data))


def init_app(app: Flask) -> None:
    """Before any other hook (CSRF reads forms) and for every route."""
    app.json = JSONProvider(app)
    app.before_request(bounded_body)
