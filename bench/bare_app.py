"""The floor for api_bench.py: a bare Flask endpoint returning constant JSON, no database.

Served by gunicorn like crm-meta: `gunicorn -c gunicorn.conf.py 'bench.bare_app:create_app()'`.
"""

from flask import Flask, jsonify

PAYLOAD = {"success": True, "data": {"connected": True, "status": "connected"}}


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/crm/marketing/token-status")
    def token_status():
        return jsonify(PAYLOAD)

    return app
