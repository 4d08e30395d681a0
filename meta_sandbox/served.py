"""What the sandbox's Graph serves, as data: every node type with its fields, its edges (and the
type each edge lists) and the ids of its objects, for tools and tests that walk the whole graph
(e.g. "no token leaves crm-meta's proxy"). Built from the routing's own tables: the generic
schema (schema.TYPES) and the marketing modules' (marketing_data.SERVED)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import insights, marketing_data, messaging, subscriptions
from .schema import TYPES


@dataclass
class ServedType:
    """One node type: its fields, edges (name -> listed type) and the ids of its objects."""

    name: str
    fields: set[str]
    edges: dict[str, str] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)


def served(sandbox) -> dict[str, ServedType]:
    """Every node type the Graph dispatcher answers for, with its objects' ids right now."""
    out: dict[str, ServedType] = {}
    for name, node_type in TYPES.items():
        out[name] = ServedType(name, set(node_type.fields),
                               {edge: spec.target for edge, spec in node_type.edges.items()})
        for obj_field, target in node_type.objects.items():
            out[name].fields.add(obj_field)
            out[name].edges.setdefault(obj_field, target)  # an object field expands like an edge
    out["AdsInsights"] = ServedType("AdsInsights", set(insights.FIELDS))  # rows, not nodes: no ids
    for name, fields in marketing_data.TYPE_FIELDS.items():
        out.setdefault(name, ServedType(name, set())).fields |= set(fields)
    for name, fields in subscriptions.TYPE_FIELDS.items():
        out.setdefault(name, ServedType(name, set())).fields |= set(fields)
    for (parent, edge), target in {**marketing_data.SERVED_EDGES, **subscriptions.SERVED_EDGES,
                            **messaging.SERVED_EDGES}.items():
        out.setdefault(parent, ServedType(parent, set())).edges[edge] = target
    with sandbox.lock:
        objects = list(sandbox.fixtures.objects.values())
        objects += list(marketing_data.state(sandbox).objects.values())
    for obj in objects:
        if obj["_type"] in out and "id" in obj:
            out[obj["_type"]].ids.append(obj["id"])
    return out
