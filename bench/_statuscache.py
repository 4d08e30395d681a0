"""How soon a change committed by one process reaches another process's status cache: the
listening process (a child) holds crm-meta with its cache warm; this process commits a change
to a status column and the child notes when its cache dropped the tenant (LISTEN/NOTIFY)."""

from __future__ import annotations

import multiprocessing
import statistics
import time


def _listener(env: dict, tenant_id: int, pipe) -> None:
    from sqlalchemy import select

    from config import config_from_env
    from crm_meta.app import create_app
    from crm_meta.infra import statuscache
    from crm_meta.infra.database import db
    from crm_meta.models import Tenant

    app = create_app(config_from_env(env))
    with app.app_context():
        cache = statuscache.for_engine(db.engine, app.config["STATUS_CACHE_SECONDS"])
        deadline = time.monotonic() + 30
        while cache.generation() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        slug = db.session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    pipe.send(("ready", slug))
    while pipe.recv() == "arm":
        generation = cache.generation()
        pipe.send("armed")
        seen = cache.wait_for_invalidation(generation, timeout=30)
        pipe.send(time.time() if seen else None)
    cache.close()


def invalidation_latency(env: dict, tenant_id: int, changes: int) -> dict:
    """Milliseconds from this process sending its COMMIT to the other process's cache dropping
    the tenant, over `changes` changes of the connection's meta_user_name (a status column)."""
    from sqlalchemy import create_engine, text

    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_listener,
                                                        args=(env, tenant_id, child))
    proc.start()
    engine = create_engine(env["DATABASE_URL"])
    latencies, lost = [], 0
    try:
        assert parent.recv()[0] == "ready"
        with engine.connect() as conn:
            original = conn.execute(text("SELECT meta_user_name FROM meta_tokens WHERE tenant_id = :t"),
                                    {"t": tenant_id}).scalar()
        for index in range(changes):
            parent.send("arm")
            assert parent.recv() == "armed"
            with engine.connect() as conn:
                conn.execute(text("UPDATE meta_tokens SET meta_user_name = :n WHERE tenant_id = :t"),
                             {"n": f"Bench change {index}", "t": tenant_id})
                committed = time.time()  # from the moment the COMMIT is sent
                conn.commit()
            seen = parent.recv()
            if seen is None:
                lost += 1
            else:
                latencies.append(max(0.0, seen - committed) * 1000)
            time.sleep(0.02)
        with engine.begin() as conn:
            conn.execute(text("UPDATE meta_tokens SET meta_user_name = :n WHERE tenant_id = :t"),
                         {"n": original, "t": tenant_id})
        parent.send("stop")
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
        engine.dispose()
    latencies.sort()
    return {"changes": changes, "lost": lost,
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2) if latencies else None,
            "max_ms": round(latencies[-1], 2) if latencies else None}
