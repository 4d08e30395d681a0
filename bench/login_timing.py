"""Benchmark: time of a refused login for a known and an unknown e-mail, with production scrypt.

Both must take about as long, or the answer time tells which addresses have an account.
Writes bench/results/login_timing.json. Run: .venv/bin/python bench/login_timing.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestingConfig  # noqa: E402
from crm_meta.app import create_app  # noqa: E402
from crm_meta.infra.database import db  # noqa: E402
from crm_meta.models import Tenant, User  # noqa: E402

ROUNDS = 30


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(TestingConfig(SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder}/bench.db",
                                       PASSWORD_HASH_METHOD="scrypt", RATELIMIT_ENABLED=False))
        with app.app_context():
            db.create_all()
            tenant = Tenant(name="Bench", slug="bench")
            db.session.add(tenant)
            db.session.flush()
            user = User(email="known@bench.test", tenant_id=tenant.id, role="admin")
            user.set_password("the right password 2026")
            db.session.add(user)
            db.session.commit()
        client = app.test_client()
        figures = {}
        for label, email in (("known", "known@bench.test"), ("unknown", "nobody@bench.test")):
            client.post("/login", data={"email": email, "password": "warm up"})
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                response = client.post("/login", data={"email": email, "password": "wrong password"})
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 401
            figures[label] = {"median_ms": round(statistics.median(times), 1),
                              "min_ms": round(min(times), 1), "max_ms": round(max(times), 1)}
        with app.app_context():
            db.engine.dispose()
    result = {"rounds": ROUNDS, "hash": "scrypt (werkzeug default cost)", **figures}
    out = ROOT / "bench" / "results" / "login_timing.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
