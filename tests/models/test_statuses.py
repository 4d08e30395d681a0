"""The status, probe, outcome and notice-event enums (issue 21, item 3) keep the values the rows,
the JSON, the metrics and the notice ids had as bare strings."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from crm_meta.meta.keepalive.probing import ProbeKind
from crm_meta.meta.keepalive.verdicts import OutcomeKind
from crm_meta.models.statuses import FAILING_STATUSES, NEEDS_RECONNECT, NoticeEvent, Status
from crm_meta.notify import Notice
from tests.helpers.settings import ROOT


def test_statuses_are_the_contracts_values():
    document = yaml.safe_load((ROOT / "crm_meta/api/openapi.yaml").read_text(encoding="utf-8"))
    enums = [schema["enum"] for schema in _schemas(document) if "disconnected" in schema.get("enum", [])]
    assert enums and all(set(enum) == {*Status, "disconnected"} for enum in enums)
    assert {"needs_reauth", "expired", "revoked"} == FAILING_STATUSES
    assert FAILING_STATUSES | {"expiring"} == NEEDS_RECONNECT


def _schemas(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_every_probe_kind_is_an_outcome_kind_of_the_same_value():
    assert {kind.value for kind in ProbeKind} <= {kind.value for kind in OutcomeKind}
    assert OutcomeKind(ProbeKind.TOKEN_ERROR) == "token_error"


def test_a_notice_id_is_the_same_with_members_or_strings():
    """Ids are derived from the notice's key: two processes (or two versions) must agree."""
    now = datetime(2026, 12, 6, tzinfo=UTC)
    members = Notice.create(event=NoticeEvent.STATUS_CHANGED, tenant_id=7, status=Status.REVOKED,
                            now=now, key=(Status.REVOKED, 3, 1))
    strings = Notice.create(event="status_changed", tenant_id=7, status="revoked", now=now,
                            key=("revoked", 3, 1))
    assert members.id == strings.id
    assert members.payload()["event"] == "meta.connection.status_changed"
