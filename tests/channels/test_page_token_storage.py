"""Page tokens are stored like the user token: encrypted, bound to tenant and Page, rotated by
`flask crypto rotate`."""

from __future__ import annotations

import pytest

from crm_meta.infra.crypto import CryptoError
from crm_meta.infra.database import db
from crm_meta.meta import channels
from crm_meta.models import MetaChannel, MetaConnection
from crm_meta.runtime import of
from tests.channels.conftest import FIRST_PAGE, Panel
from tests.helpers.cli import invoke, ok
from tests.helpers.database import raw_rows
from tests.helpers.settings import KEY_A, KEY_B


def page_token(app, page_id: str = FIRST_PAGE) -> str:
    with app.app_context():
        channel = db.session.scalar(db.select(MetaChannel).filter_by(asset_id=page_id))
        return channels.read_page_token(of(app).store, channel)


def test_page_tokens_are_encrypted_bound_and_rotated(make_app, make_tenant, build_app, sqlite_url, sandbox):
    old = make_app(database_url=sqlite_url, ENCRYPTION_KEY=KEY_A)
    tenant = make_tenant("pages", app_=old)
    panel = Panel(old.test_client(), sandbox.url, tenant.tenant_id)
    assert panel.connect().status_code == 200
    token = page_token(old)
    assert token.startswith("EAA") and token not in str(raw_rows(old, "meta_channels"))
    with old.app_context():  # a ciphertext moved to another Page does not open
        first, second = db.session.scalars(
            db.select(MetaChannel).filter_by(asset_type="page").order_by(MetaChannel.position)).all()
        own = second.token_ciphertext
        second.token_ciphertext = first.token_ciphertext
        with pytest.raises(CryptoError):
            channels.read_page_token(of(old).store, second)
        second.token_ciphertext = own
        db.session.commit()
    new = build_app(sqlite_url, ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEYS_PREVIOUS=[KEY_A])
    output = ok(invoke(new, ["crypto", "rotate"]))
    assert token not in output
    only_b = build_app(sqlite_url, ENCRYPTION_KEY=KEY_B)
    assert page_token(only_b) == token
    with only_b.app_context():
        keys = {row.key_id for row in db.session.scalars(db.select(MetaChannel))
                if row.token_ciphertext} | {db.session.scalar(db.select(MetaConnection.key_id))}
    assert keys == {of(only_b).cipher.current.kid}
