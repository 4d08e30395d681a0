"""What the sandbox's Graph serves, as data: every node type with its fields, its edges (and the
type each edge lists) and the ids of its objects, for tools and tests that walk the whole graph
(e.g. "no token leaves crm-meta's proxy"). Built from the routing's own tables: the generic
schema (schema.TYPES) and the marketing modules' (marketing_data, ads, ads_data)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ads, ads_data, insights, marketing_data, messaging, subscriptions
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
    for name, fields in {**ads_data.TYPE_FIELDS, **subscriptions.TYPE_FIELDS}.items():
        out.setdefault(name, ServedType(name, set())).fields |= set(fields)
    for (parent, edge), target in {**marketing_data.SERVED_EDGES, **subscriptions.SERVED_EDGES,
                                   **messaging.SERVED_EDGES}.items():
        out.setdefault(parent, ServedType(parent, set())).edges[edge] = target
    targets = {"campaigns": "Campaign", "adsets": "AdSet", "ads": "Ad", "insights": "AdsInsights"}
    for parent, edges in ads.EDGES.items():
        out[parent].edges.update({edge: targets[edge] for edge in edges})
    for parent, objects in ads.PARENTS.items():
        out[parent].edges.update({name: {"campaign": "Campaign", "adset": "AdSet"}[name] for name in objects})
    with sandbox.lock:
        objects = list(sandbox.fixtures.objects.values())
        objects += list(ads_data.of(sandbox).state.objects.values())
    for obj in objects:
        if obj["_type"] in out and "id" in obj:
            out[obj["_type"]].ids.append(obj["id"])
    return out
