"""Database round trips per request, counted in-process: the app served by Flask's test client
with its database URL pointed at a counting proxy (bench/_pgwire.py), plus what SQLAlchemy's
own events see (statements, commits, rollbacks, pool checkouts). Meant to run in a child."""

from __future__ import annotations

from collections import Counter


def _build(name: str, env: dict, url: str):
    if name.startswith("crm-meta"):
        import time

        from config import config_from_env
        from crm_meta.app import create_app
        from crm_meta.infra import statuscache

        app = create_app(config_from_env(env | {"DATABASE_URL": url}))
        with app.app_context():
            cache = statuscache.for_engine(app.extensions["sqlalchemy"].engine,
                                           app.config["STATUS_CACHE_SECONDS"])
        deadline = time.monotonic() + 30
        while cache is not None and cache.generation() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the status cache's listener in place: steady state can begin
        return app
    import peer_app

    return peer_app.create_app(url, env["PEER_JWT_SECRET"])


def count_round_trips(name: str, env: dict, database_url: str, path: str, headers: dict,
                      requests: int) -> dict:
    """Steady state: a few warm-up requests, then `requests` counted ones, per request."""
    from _pgwire import WireCounter
    from sqlalchemy import event

    wire = WireCounter.for_url(database_url)
    app = _build(name, env, wire.url(database_url))
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    seen: Counter = Counter()
    event.listen(engine, "before_cursor_execute", lambda *a: seen.update(["statements"]))
    event.listen(engine, "commit", lambda *a: seen.update(["commits"]))
    event.listen(engine, "rollback", lambda *a: seen.update(["rollbacks"]))
    event.listen(engine.pool, "checkout", lambda *a: seen.update(["checkouts"]))
    client = app.test_client()

    def get():
        response = client.get(path, headers=headers, base_url="https://localhost")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]

    for _ in range(5):  # the pool's first connections, caches, lazy imports
        get()
    wire.reset()
    seen.clear()
    for _ in range(requests):
        get()
    trips, _ = wire.snapshot()
    counted = Counter(seen)  # a copy: the listeners go on counting into `seen`
    wire.reset()
    get()  # one more, alone, for its statements in order
    _, one = wire.snapshot()
    per = {key: round(value / requests, 2) for key, value in counted.items()}
    for key in ("statements", "commits", "rollbacks", "checkouts"):
        per.setdefault(key, 0)
    return {
        "requests": requests,
        "wire_round_trips_per_request": round(sum(trips.values()) / requests, 2),
        "wire_by_kind_per_request": {k: round(v / requests, 2) for k, v in trips.most_common()},
        "sqlalchemy_statements_per_request": per["statements"],
        "sqlalchemy_commits_per_request": per["commits"],
        "sqlalchemy_rollbacks_per_request": per["rollbacks"],
        "statements_plus_transaction_ends_per_request": round(
            per["statements"] + per["commits"] + per["rollbacks"], 2),
        "pool_checkouts_per_request": per["checkouts"],
        "one_request": one,
    }
