"""The app's `ensure_sync` (crm_meta.app.CrmMetaFlask): plain functions and methods answered
from their code flag, everything else (coroutines above all) left to Flask."""

from __future__ import annotations

import functools


def plain(response=None):
    return response


async def coroutine():
    return "done"


class Hooks:
    def method(self, response=None):
        return response

    async def async_method(self):
        return "done"


def test_plain_functions_and_methods_are_used_as_they_are(app):
    hooks = Hooks()
    assert app.ensure_sync(plain) is plain
    assert app.ensure_sync(hooks.method) == hooks.method


def test_coroutines_and_other_callables_still_go_through_flask(app, monkeypatch):
    converted = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: converted.append(func) or (lambda: "sync"))
    hooks = Hooks()
    assert app.ensure_sync(coroutine)() == "sync"
    assert app.ensure_sync(hooks.async_method)() == "sync"
    wrapped = functools.partial(coroutine)
    assert app.ensure_sync(wrapped)() == "sync"  # a partial: Flask's own check unwraps it
    assert converted == [coroutine, hooks.async_method, wrapped]
    sync_partial = functools.partial(plain, 1)
    assert app.ensure_sync(sync_partial) is sync_partial


def test_a_request_runs_its_hooks_and_view(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.headers["X-Request-ID"]
