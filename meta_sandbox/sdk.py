"""The emulated JavaScript SDK: `{base}/<locale>/sdk.js` (what a page loads from
connect.facebook.net, with the sandbox's base URL in its body) and its return page
`{base}/x/connect/xd_arbiter`, which passes the dialog's code to the page that opened it."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Response, render_template, url_for

_HERE = Path(__file__).resolve().parent
_SDK = _HERE / "sdk.js"
_XD = _HERE / "xd_arbiter.js"


def register(bp, sandbox) -> None:
    """Add the SDK's routes to the sandbox blueprint."""

    @bp.get("/<locale>/sdk.js")
    def sdk_script(locale: str):
        """The SDK for any locale (en_US, es_LA...), as Meta serves one per locale."""
        base = url_for(".index", _external=True).rstrip("/")
        text = (_SDK.read_text(encoding="utf-8").replace("__BASE__", json.dumps(base))
                .replace("__VERSION__", json.dumps(sandbox.config["default_version"])))
        return Response(text, mimetype="application/javascript",
                        headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})

    @bp.get("/x/connect/xd_arbiter")
    def sdk_xd_arbiter():
        """Where the dialog sends an SDK login back: a page whose script tells the opener."""
        return render_template("sandbox/xd_arbiter.html", script=url_for(".sdk_xd_script"),
                               stylesheet=url_for(".stylesheet"))

    @bp.get("/x/connect/xd_arbiter.js")
    def sdk_xd_script():
        """The return page's script (a file: the app's CSP allows no inline script)."""
        return Response(_XD.read_text(encoding="utf-8"), mimetype="application/javascript")
