"""No token, code or secret reaches a response, a log line or the raw database."""

import logging
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from crm_meta.infra.database import db
from crm_meta.models import MetaConnection
from crm_meta.runtime import runtime
from tests.helpers.settings import APP_SECRET


def test_whole_flow_leaks_nothing(app, meta_flow, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs URLs at DEBUG: secrets must not be in them
    bodies = []
    data = meta_flow.start()
    location = meta_flow.sandbox.consent(data["auth_url"])
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = meta_flow.callback(location)
    assert response.status_code == 200
    bodies.append(response.get_data(as_text=True))
    for path in ("/crm/marketing/token-status", "/crm/auth/meta/test-connection",
                 "/crm/auth/meta/debug/token", "/crm/marketing/meta-portfolios",
                 "/crm/marketing/meta-accounts"):
        bodies.append(meta_flow.client.get(path).get_data(as_text=True))
    meta_flow.sandbox.fault(path="/v25.0/debug_token", code=190, error_subcode=463, count=1)
    bodies.append(meta_flow.client.get("/crm/auth/meta/test-connection").get_data(as_text=True))
    with app.app_context():
        token = runtime().store.read(db.session.scalar(db.select(MetaConnection)))
        dump = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
                dump.append(" ".join(str(value) for value in row))
    bodies.append(meta_flow.client.post("/crm/auth/meta/disconnect").get_data(as_text=True))
    logs = "\n".join(record.getMessage() + str(record.__dict__.get("graph", ""))
                     for record in caplog.records)
    assert token.startswith("EAA")
    for secret in (token, code, APP_SECRET):
        assert secret not in logs
        assert all(secret not in body for body in bodies)
        assert all(secret not in row for row in dump)
    assert "EAA" not in logs
