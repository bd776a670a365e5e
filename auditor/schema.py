"""The published JSON Schema of the report, generated from the typed dataclasses.

The committed file auditor/schemas/report-v1.json is what users validate against; a test
regenerates it and fails when the two differ, so the schema cannot drift from the code.
Regenerate with: python -m auditor.schema > auditor/schemas/report-v1.json, and the fleet report's
with: python -m auditor.schema fleet > auditor/schemas/fleet-v1.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from importlib import resources
from typing import Any, Literal

from auditor.checks.base import Finding
from auditor.facts import SCHEMA_VERSION, Snapshot
from auditor.decisions.fleet import FLEET_SCHEMA_VERSION, FleetReport
from auditor.decisions.readiness import Readiness, Recommendation
from auditor.peaks import ThroughputFigure

SCHEMA_ID = "https://ml-env-auditor.invalid/schemas/report-v1.json"
FLEET_SCHEMA_ID = "https://ml-env-auditor.invalid/schemas/fleet-v1.json"
_SCALARS = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"}}


def _schema_for(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return {"anyOf": [_schema_for(inner, defs), {"type": "null"}]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema_for(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_for(args[1], defs)}
    if dataclasses.is_dataclass(tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # reserve the name first: dataclasses may refer to each other
            defs[tp.__name__] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if tp is Any:
        return {}
    return dict(_SCALARS[tp])


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties = {f.name: _schema_for(hints[f.name], defs) for f in dataclasses.fields(cls)}
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


def report_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    top = _object_schema(Snapshot, defs)
    for name, tp in (("findings", list[Finding]), ("readiness", Readiness), ("recommendation", Recommendation),
                     ("throughput", list[ThroughputFigure])):
        top["properties"][name] = _schema_for(tp, defs)
        top["required"].append(name)
    return _document(top, defs, SCHEMA_ID, SCHEMA_VERSION, "auditor report",
                     "A facts snapshot of one machine and Python environment, with the findings, readiness and "
                     "recommendation derived from it.")


def fleet_schema() -> dict[str, Any]:
    """`auditor fleet --format json`: the fleet report."""
    defs: dict[str, Any] = {}
    return _document(_object_schema(FleetReport, defs), defs, FLEET_SCHEMA_ID, FLEET_SCHEMA_VERSION,
                     "auditor fleet report",
                     "Every node of a fleet side by side (its verdicts, or why it was not audited), the nodes "
                     "grouped by configuration, and the fleet's own findings (FLT).")


def _document(top: dict[str, Any], defs: dict[str, Any], schema_id: str, version: str, title: str,
              description: str) -> dict[str, Any]:
    top["properties"]["schema_version"] = {"type": "string", "pattern": rf"^{version.split('.')[0]}\.\d+$"}
    top.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        "description": (f"{description} schema_version MAJOR changes only when a field is removed or changes type "
                        "or meaning; readers must ignore unknown keys."),
        **top,
        "$defs": dict(sorted(defs.items())),
    }


SCHEMAS = {"report": (report_schema, "schemas/report-v1.json"), "fleet": (fleet_schema, "schemas/fleet-v1.json")}


def render_schema(kind: str = "report") -> str:
    return json.dumps(SCHEMAS[kind][0](), indent=2) + "\n"


def published_schema(kind: str = "report") -> str:
    return resources.files("auditor").joinpath(SCHEMAS[kind][1]).read_text(encoding="utf-8")


if __name__ == "__main__":  # python -m auditor.schema [report|fleet]
    print(render_schema(*sys.argv[1:2]), end="")
