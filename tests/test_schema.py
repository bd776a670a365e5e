"""The published JSON Schema: generated from the code, and the real output validates against it."""

from __future__ import annotations

import json

import jsonschema
import pytest

from auditor.facts import SCHEMA_VERSION, Snapshot, SnapshotFormatError, from_dict
from auditor.schema import published_schema, render_schema


def test_published_schema_is_current():
    assert published_schema() == render_schema(), "regenerate: python -m auditor.schema > auditor/schemas/report-v1.json"


def test_real_report_validates_against_published_schema(real_report):
    schema = json.loads(published_schema())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(real_report, schema, cls=jsonschema.Draft202012Validator)
    assert real_report["schema_version"] == SCHEMA_VERSION


def test_schema_rejects_a_report_with_a_wrong_probe_status(real_report):
    broken = json.loads(json.dumps(real_report))
    broken["probes"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(published_schema()), cls=jsonschema.Draft202012Validator)


def test_real_report_loads_back_as_a_typed_snapshot(real_report):
    snapshot = from_dict(Snapshot, real_report)
    assert snapshot.frameworks["torch"].proofs[0].ok is True
    assert snapshot.machine.cpu.usable_cpus >= 1


def test_malformed_snapshot_names_the_key_and_the_problem(real_report):
    broken = json.loads(json.dumps(real_report))
    broken["machine"]["cpu"]["logical_cpus"] = "two"
    with pytest.raises(SnapshotFormatError, match=r"\$\.machine\.cpu\.logical_cpus: expected int, got str"):
        from_dict(Snapshot, broken)
