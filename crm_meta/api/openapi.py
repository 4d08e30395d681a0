"""The JSON API's OpenAPI 3.1 document: kept beside the code, served as JSON and as a page."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import yaml
from flask import Response, render_template

from crm_meta.api import bp

DOCUMENT = Path(__file__).with_name("openapi.yaml")
METHODS = ("get", "post", "put", "patch", "delete")


@lru_cache(maxsize=1)
def document() -> dict:
    """The document as data (read once per process)."""
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _serialised() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=1)  # paths stay in their order


def resolve(doc: dict, node: dict) -> tuple[str | None, dict]:
    """Follow a `$ref` chain inside the document: (the last component's name, its content)."""
    name = None
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return name, node


def error_codes(doc: dict, schema: dict) -> list[str]:
    """The `error.code` values an error schema allows (its allOf's enum)."""
    _, schema = resolve(doc, schema)
    for part in schema.get("allOf", []):
        code = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        if "enum" in code:
            return list(code["enum"])
    return []


def _content(doc: dict, content: dict) -> list[dict]:
    shown = []
    for media, body in (content or {}).items():
        name, schema = resolve(doc, body.get("schema", {}))
        if name is None:  # an envelope around a named schema: name the data's schema
            for part in schema.get("allOf", []):
                data = part.get("properties", {}).get("data")
                if data:
                    items = data.get("items", data)
                    name = resolve(doc, items)[0] or resolve(doc, data.get("oneOf", [{}])[0])[0]
                    name = f"{name}[]" if "items" in data else name
        shown.append({"media": media, "schema": name, "codes": error_codes(doc, body.get("schema", {}))})
    return shown


def page_model(doc: dict) -> dict:
    """What the page shows: operations grouped by tag, each with its parameters and answers."""
    tags = {tag["name"]: {**tag, "operations": []} for tag in doc.get("tags", [])}
    for path, item in doc["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = []
            for status, response in operation["responses"].items():
                _, response = resolve(doc, response)
                responses.append({"status": status, "description": response.get("description", ""),
                                  "content": _content(doc, response.get("content"))})
            body = operation.get("requestBody")
            tag = tags.setdefault(operation["tags"][0], {"name": operation["tags"][0], "operations": []})
            tag["operations"].append({
                "method": method.upper(), "path": path, "id": operation["operationId"],
                "summary": operation.get("summary", ""), "description": operation.get("description", ""),
                "public": operation.get("security", doc.get("security")) == [],
                "parameters": [resolve(doc, p)[1] for p in operation.get("parameters", [])],
                "body": _content(doc, body["content"]) if body else [],
                "responses": responses,
            })
    schemas = {name: json.dumps(schema, indent=2, ensure_ascii=False)
               for name, schema in doc["components"]["schemas"].items()}
    return {"info": doc["info"], "version": doc["openapi"], "tags": list(tags.values()),
            "schemas": schemas}


@bp.get("/crm/openapi.json")
def openapi_json():
    return Response(_serialised(), mimetype="application/json")


@bp.get("/crm/openapi")
def openapi_page():
    return render_template("api/openapi.html", page=page_model(document()))
