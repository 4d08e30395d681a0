"""`flask meta doctor` checks the app-level webhook subscription (object page, field leadgen,
this server's callback) and makes it with --subscribe: Meta verifies the callback first."""

from __future__ import annotations

import requests

from tests.helpers.settings import APP_ID, APP_SECRET


def _doctor(app, *args):
    return app.test_cli_runner().invoke(args=["meta", "doctor", *args])


def test_the_doctor_names_a_missing_subscription_and_makes_it(live_hook_app, sandbox):
    app, url = live_hook_app
    app.config["API_BASE_URL"] = url  # this server as Meta reaches it
    app.config["META_REDIRECT_URI"] = f"{url}/crm/auth/meta/callback"
    missing = _doctor(app)
    assert missing.exit_code == 1
    assert "FAIL webhook subscription: no Page subscription" in missing.output
    assert "flask meta doctor --subscribe" in missing.output

    made = _doctor(app, "--subscribe")
    assert made.exit_code == 0, made.output
    assert ("ok   webhook subscription: subscribed: Meta now sends Page leadgen events to "
            f"{url}/webhooks/meta") in made.output
    listed = requests.get(f"{sandbox.url}/v25.0/{APP_ID}/subscriptions",
                          params={"access_token": f"{APP_ID}|{APP_SECRET}"}, timeout=10).json()["data"]
    assert listed[0]["callback_url"] == f"{url}/webhooks/meta"
    assert _doctor(app).exit_code == 0
    assert APP_SECRET not in made.output

