"""The documented error codes are the code's (review 2: the README said 404 `unknown_tenant`
where /internal/ answers `not_found`; `unknown_tenant` is the 401 of a CRM token naming no
tenant, and each code has one status). Three sources must agree: the
OpenAPI document's per-status enums (Error400, Error401, ...), every "status `code`" the README
names, and what the code raises: the error table (RULES, HTTP_CODES, the AppError classes) and
every `code="..."` given to an HTTP error in crm_meta/."""

from __future__ import annotations

import ast
import re

import yaml

from crm_meta.http import errors
from crm_meta.meta import errors as domain
from tests.helpers.settings import ROOT

STATUS_OF = {"NotAuthenticated": 401, "Forbidden": 403, "NotFound": 404, "ValidationFailed": 422,
             "MetaFailed": 502}


def documented() -> dict[int, set[str]]:
    document = yaml.safe_load((ROOT / "crm_meta/api/openapi.yaml").read_text(encoding="utf-8"))
    found = {}
    for name, schema in document["components"]["schemas"].items():
        if re.fullmatch(r"Error\d{3}", name):
            code = schema["allOf"][1]["properties"]["error"]["properties"]["code"]
            found[int(name[5:])] = set(code["enum"])
    return found


def in_readme() -> set[tuple[int, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {(int(status), code) for status, code in re.findall(r"\b([45]\d\d) `([a-z_]+)`", text)}


def _literal(node):
    return node.value if isinstance(node, ast.Constant) else None


def raised_in_code() -> set[tuple[int, str]]:
    """(status, code) of every HTTP error built with a literal code in crm_meta/."""
    found = set()
    for path in (ROOT / "crm_meta").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            kwargs = {k.arg: _literal(k.value) for k in node.keywords}
            if kwargs.get("code") is None:
                continue
            if name in STATUS_OF:
                found.add((kwargs.get("status") or STATUS_OF[name], kwargs["code"]))
            elif name == "AppError" and kwargs.get("status"):
                found.add((kwargs["status"], kwargs["code"]))
    return found


def error_table() -> set[tuple[int, str]]:
    """The codes of the error table: RULES with a code of their own, the domain errors' default
    codes under their rule, HTTP_CODES and the AppError classes."""
    found = {(status, code) for status, (code, _message) in errors.HTTP_CODES.items()}
    found |= {(cls.status, cls.code) for cls in errors.AppError.__subclasses__()}
    found |= {(rule.status, rule.code) for rule in errors.RULES.values() if rule.code}
    for name in dir(domain):
        cls = getattr(domain, name)
        if isinstance(cls, type) and issubclass(cls, domain.DomainError) and cls is not domain.DomainError:
            code = cls.__dict__.get("code")
            if isinstance(code, str):
                found.add((errors.to_app_error(cls()).status, code))
    return found


def test_the_readme_names_only_documented_codes_with_their_status():
    docs = documented()
    wrong = sorted((status, code) for status, code in in_readme() if code not in docs.get(status, ()))
    assert wrong == [], f"README codes missing from the OpenAPI enum of their status: {wrong}"


def test_every_code_the_code_raises_is_documented_with_its_status():
    docs = documented()
    undocumented = sorted((s, c) for s, c in raised_in_code() | error_table()
                          if s in docs and c not in docs[s])
    assert undocumented == [], f"raised but not in the OpenAPI document: {undocumented}"


def test_every_documented_code_exists_in_the_code():
    source = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "crm_meta").rglob("*.py"))
    phantom = sorted((s, c) for s, codes in documented().items() for c in codes
                     if f'"{c}"' not in source and f"'{c}'" not in source)
    assert phantom == [], f"documented codes nothing raises: {phantom}"


def test_an_unknown_tenant_reads_the_same_everywhere(app, client, make_tenant):
    """The review's case: the README said 404 unknown_tenant; the code says not_found."""
    from crm_meta.internal import keys

    make_tenant("acme")
    with app.app_context():
        key = keys.create("marketing", ["credentials:read"]).key
    response = client.get("/internal/meta/connections/ghost/credentials",
                          headers={"Authorization": f"Bearer {key}"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "not_found")
    assert (404, "not_found") in in_readme() and (404, "unknown_tenant") not in in_readme()
