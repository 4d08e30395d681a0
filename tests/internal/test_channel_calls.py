"""The CRM's messaging services and the channels (issue 23, item 6): `credentials:read` gives
each Page's token (CRM Ventas' names with `?format=crm-ventas`), and the proxy sends Page-scoped
calls with the Page's own token and WhatsApp calls with the tenant's, so a messaging service
needs no token at all."""

from __future__ import annotations

import json

from tests.channels.conftest import FIRST_PAGE, PHONE, SECOND_PAGE, Panel
from tests.internal.tokens import PROXY, tokens_in

CREDENTIALS = "/internal/meta/connections/{}/credentials"


def connected(app, make_tenant, sandbox):
    tenant = make_tenant("acme")
    panel = Panel(app.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200
    assert panel.select([FIRST_PAGE, PHONE]).status_code == 200
    return tenant


def test_credentials_read_names_page_tokens_as_crm_ventas_does(app, make_tenant, sandbox, make_key):
    connected(app, make_tenant, sandbox)
    reader = make_key("messaging", scopes=("credentials:read",))
    client = app.test_client()
    crm = client.get(CREDENTIALS.format("acme"), query_string={"format": "crm-ventas"},
                     headers=reader.headers).get_json()["data"]
    assert crm[f"META_PAGE_TOKEN_{FIRST_PAGE}"].startswith("EAA")
    assert crm[f"META_PAGE_TOKEN_{SECOND_PAGE}"].startswith("EAA")
    assert crm[f"META_PAGE_TOKEN_{FIRST_PAGE}"] != crm["META_USER_LONG_TOKEN"]
    plain = client.get(CREDENTIALS.format("acme"), headers=reader.headers).get_json()["data"]
    pages = {p["page_id"]: p for p in plain["page_tokens"]}
    assert pages[FIRST_PAGE]["access_token"] == crm[f"META_PAGE_TOKEN_{FIRST_PAGE}"]
    assert len(pages[FIRST_PAGE]["appsecret_proof"]) == 64


def test_the_proxy_sends_page_and_whatsapp_messages_with_the_right_token(app, make_tenant, sandbox,
                                                                         make_key):
    connected(app, make_tenant, sandbox)
    proxy = make_key("messenger", scopes=("graph:proxy",))
    client = app.test_client()
    sent = client.post(PROXY.format("acme", f"{FIRST_PAGE}/messages"), headers=proxy.headers,
                       data={"recipient": json.dumps({"id": "24000000000000001"}),
                             "message": json.dumps({"text": "Hola"})})
    assert sent.status_code == 200, sent.get_data(as_text=True)  # the sandbox takes only a Page token
    assert sent.get_json()["recipient_id"] == "24000000000000001"
    whatsapp = client.post(PROXY.format("acme", f"{PHONE}/messages"), headers=proxy.headers,
                           data={"messaging_product": "whatsapp", "to": "+34600000002", "type": "text",
                                 "text": json.dumps({"body": "Hola"})})
    assert whatsapp.status_code == 200, whatsapp.get_data(as_text=True)
    assert whatsapp.get_json()["messages"][0]["id"].startswith("wamid.")
    for answer in (sent, whatsapp):
        assert not tokens_in(answer)
    # Reading a Page's token through the proxy is still refused.
    refused = client.get(PROXY.format("acme", FIRST_PAGE), headers=proxy.headers,
                         query_string={"fields": "access_token"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == 10  # permission (#10)


def test_a_user_token_on_a_page_edge_does_not_strike_the_connection(app, make_tenant, sandbox, make_key):
    """Meta's (#190) for a user token on a Page-only edge is no verdict on the token."""
    from crm_meta.infra.database import db
    from crm_meta.models import MetaChannel, MetaConnection

    connected(app, make_tenant, sandbox)
    with app.app_context():  # a Page whose token we do not hold: the call goes with the user's
        for channel in db.session.scalars(db.select(MetaChannel).filter_by(asset_id=FIRST_PAGE)):
            channel.token_ciphertext = None
        db.session.commit()
    proxy = make_key("messenger", scopes=("graph:proxy",))
    for _ in range(3):
        answer = app.test_client().post(PROXY.format("acme", f"{FIRST_PAGE}/messages"),
                                        headers=proxy.headers,
                                        data={"recipient": json.dumps({"id": "1"}),
                                              "message": json.dumps({"text": "x"})})
        assert answer.get_json()["error"]["code"] == 190
    with app.app_context():
        row = db.session.scalar(db.select(MetaConnection))
        assert (row.status, row.consecutive_failures) == ("connected", 0)
