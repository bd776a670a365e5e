"""Saving and replaying snapshots: old ones stay readable, bad ones are one-line input errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from auditor.facts import SCHEMA_VERSION
from auditor.schema import published_schema
from conftest import run_auditor

SNAPSHOTS = Path(__file__).parent / "snapshots"


def replay(path, *args):
    return run_auditor("audit", "--snapshot", str(path), *args)


def test_a_schema_1_0_snapshot_still_replays_and_validates_today():
    result = replay(SNAPSHOTS / "v1.0-cpu-only-linux.json", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads((SNAPSHOTS / "v1.0-cpu-only-linux.json").read_text())["schema_version"] == "1.0"
    assert report["schema_version"] == SCHEMA_VERSION
    jsonschema.validate(report, json.loads(published_schema()), cls=jsonschema.Draft202012Validator)
    assert report["accelerators"]["pci"] == []  # a field 1.0 did not have, at its default
    assert {fw["framework"]: fw["status"] for fw in report["readiness"]["frameworks"]} == {"tensorflow": "ready", "torch": "ready"}


def test_saved_snapshot_replays_to_the_same_report(tmp_path):
    saved = tmp_path / "facts.json"
    first = run_auditor("audit", "--quick", "--format", "json", "--save-snapshot", str(saved))
    assert first.returncode == 0, first.stderr
    facts = json.loads(saved.read_text())
    assert "findings" not in facts and facts["schema_version"] == SCHEMA_VERSION
    second = replay(saved, "--format", "json")
    assert json.loads(second.stdout) == json.loads(first.stdout)


def test_apple_silicon_snapshot(tmp_path):
    result = replay(SNAPSHOTS / "apple-m2-pro-macos14.json", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accelerators"]["apple"]["mps_eligible"] is True
    torch = next(fw for fw in report["readiness"]["frameworks"] if fw["framework"] == "torch")
    assert {d["device"]: d["status"] for d in torch["devices"]} == {"cpu": "ready", "mps": "ready"}
    assert ("torch", "mps") in {(c["framework"], c["device"]) for c in report["recommendation"]["choices"]}
    text = replay(SNAPSHOTS / "apple-m2-pro-macos14.json").stdout
    assert "macOS 14.5, arm64, MPS eligible; tensorflow-metal 1.2.0" in text


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    ("[]", "$.schema_version is missing"),
    ('{"schema_version": "2.0"}', "schema_version 2.0 cannot be read by this auditor (reads 1.x)"),
    ("CUT", "$.machine.cpu.logical_cpus: expected int, got str"),
])
def test_malformed_snapshots_are_one_line_input_errors(tmp_path, content, message):
    path = tmp_path / "snapshot.json"
    if content == "CUT":
        data = json.loads((SNAPSHOTS / "v1.0-cpu-only-linux.json").read_text())
        data["machine"]["cpu"]["logical_cpus"] = "two"
        content = json.dumps(data)
    path.write_text(content)
    out = tmp_path / "report.md"
    result = replay(path, "--format", "markdown", "--output", str(out))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("auditor: error: snapshot ")
    assert message in result.stderr
    assert not out.exists()


def test_missing_snapshot_and_conflicting_flags():
    result = replay("/nonexistent/snapshot.json")
    assert (result.returncode, result.stderr.strip()) == (
        2, "auditor: error: cannot read snapshot /nonexistent/snapshot.json: No such file or directory")
    result = replay(SNAPSHOTS / "v1.0-cpu-only-linux.json", "--quick", "--timeout", "5")
    assert result.returncode == 2
    assert result.stderr.strip() == ("auditor: error: --snapshot replays saved facts and cannot be combined with "
                                     "--quick, --timeout")


def test_deep_cannot_be_combined_with_a_replay_or_with_quick(tmp_path):
    result = replay(SNAPSHOTS / "v1.0-cpu-only-linux.json", "--deep")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == "auditor: error: --snapshot replays saved facts and cannot be combined with --deep"
    out = tmp_path / "report.json"
    quick_and_deep = run_auditor("audit", "--quick", "--deep", "-o", str(out))
    assert (quick_and_deep.returncode, quick_and_deep.stdout) == (2, "")
    assert quick_and_deep.stderr.strip() == ("auditor: error: --quick imports no framework and --deep runs the "
                                             "slowest proofs; choose one")
    assert not out.exists()
