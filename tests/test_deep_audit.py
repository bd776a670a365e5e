"""`auditor audit --deep` for real on this machine, and the compute proof under a faulty device.

The deep audit runs once for the module, with HOME and TMPDIR pointed at empty directories,
so the tests can also prove that it wrote nothing outside the report it was asked for.
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

import pytest

from auditor.probes.proof import TOLERANCE
from auditor.probes.registry import EXPORT_PATHS
from conftest import run_auditor

SEAM = Path(__file__).parent / "fakes" / "sitecustomize"


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    home, tmp = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("tmp")
    snapshot = tmp_path_factory.mktemp("out") / "deep.json"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = run_auditor("audit", "--deep", "--format", "json", "--save-snapshot", str(snapshot), env=env,
                         timeout=600)
    assert result.returncode in (0, 1), result.stderr
    return {"report": json.loads(result.stdout), "home": home, "tmp": tmp, "snapshot": snapshot, "env": env,
            "returncode": result.returncode}


def test_deep_runs_the_compilers_it_defers_otherwise(deep):
    report = deep["report"]
    assert report["mode"] == "deep"
    compiled = {(fw, p["workload"]): p for fw, facts in report["frameworks"].items()
                for p in facts["proofs"] if p["compiler"]}
    for key in (("torch", "train-step"), ("tensorflow", "train-step"), ("tensorflow", "matmul")):
        proof = compiled[key]
        assert proof["skipped"] is None and proof["ok"], proof
        assert proof["max_relative_error"] < TOLERANCE["float32"]
    assert compiled[("torch", "train-step")]["compiler"] == "torch.compile"
    assert compiled[("tensorflow", "train-step")]["compiler"] == "xla"


def test_deep_checks_every_export_path_for_real(deep):
    exports = deep["report"]["exports"]
    assert sorted(exports) == sorted(EXPORT_PATHS)
    expected = {name: "ready" for name in EXPORT_PATHS} | {"coreml": "not-applicable"}  # Core ML predicts on macOS only
    assert {name: path["status"] for name, path in exports.items()} == expected
    for name, path in exports.items():
        if path["status"] == "ready":
            assert path["max_relative_error"] <= path["tolerance"], name
    assert exports["onnx"]["details"]["providers_used"] == "CPUExecutionProvider"
    assert exports["onnx"]["runtime"] == f"onnxruntime {metadata.version('onnxruntime')}"
    assert exports["executorch"]["runtime"] == f"executorch {metadata.version('executorch')}"
    assert exports["tflite-int8"]["details"]["input_dtype"] == "int8"
    # The export probes are recorded like every other probe.
    runs = {run["name"]: run["status"] for run in deep["report"]["probes"]}
    assert {runs[name] for name in runs if name.startswith("export-")} == {"ok"}


def test_deep_readiness_lists_each_path_with_the_findings_it_earns(deep):
    report = deep["report"]
    rows = {row["path"]: row for row in report["readiness"]["exports"]}
    assert set(rows) == set(EXPORT_PATHS)
    assert rows["onnx"]["detail"].startswith(f"onnxruntime {metadata.version('onnxruntime')}: output matched")
    assert rows["coreml"]["detail"].startswith("Core ML runs models only on macOS (import, export, convert passed")
    codes = {f["code"] for f in report["findings"]}
    assert "EXP001" not in codes
    assert "EXP007" in codes  # no tensorflow_model_server on this machine's PATH
    assert ("EXP003" in codes) is False  # ExecuTorch and ONNX work, so TorchScript is not relied on


def test_deep_audit_wrote_nothing_outside_its_report(deep):
    assert list(deep["home"].iterdir()) == []
    assert list(deep["tmp"].iterdir()) == []


def test_deep_snapshot_replays_into_markdown_with_its_export_table(deep):
    replay = run_auditor("audit", "--snapshot", str(deep["snapshot"]), "--format", "markdown", env=deep["env"])
    assert replay.returncode == deep["returncode"], replay.stderr
    text = replay.stdout
    assert "## Export paths" in text
    assert "| onnx: PyTorch -> ONNX (dynamo exporter), run in ONNX Runtime | ready |" in text
    assert re.search(r"\| PyTorch \| cpu \| float32 \| torch.compile \| train-step \| \d\.\de-\d\d of 2e-03 \|", text)


@pytest.mark.parametrize("faulty, healthy", [("torch", "tensorflow"), ("tensorflow", "torch")])
def test_a_device_giving_wrong_numbers_is_broken_not_ready(faulty, healthy):
    """The seam skews the framework's matrix products by 1%; the proof must catch it."""
    env = {**os.environ, "AUDITOR_TEST_WRONG_NUMBERS": faulty, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SEAM), os.environ.get("PYTHONPATH")]))}
    result = run_auditor("audit", "--format", "json", env=env)
    assert result.returncode == 1, result.stderr  # FW004 is an error
    report = json.loads(result.stdout)
    frameworks = {fw["framework"]: fw for fw in report["readiness"]["frameworks"]}
    assert frameworks[faulty]["status"] == "broken"
    assert frameworks[healthy]["status"] == "ready"
    failed = [p for p in report["frameworks"][faulty]["proofs"] if not p["ok"] and not p["skipped"]]
    # Every float32 workload built on a matrix product is off; the convolution is not. 1% is
    # inside bfloat16's own tolerance (5%, about 8 bits of mantissa), so those proofs pass.
    assert {(p["workload"], p["dtype"]) for p in failed if p["compiler"] is None} == {
        ("matmul", "float32"), ("train-step", "float32")}
    matmul = next(p for p in failed if p["workload"] == "matmul" and p["dtype"] == "float32")
    assert matmul["max_relative_error"] == pytest.approx(0.01, rel=1e-3)
    assert matmul["error"].startswith("result differs from the float64 reference by 0.01")
    findings = [f for f in report["findings"] if f["code"] == "FW004"]
    assert findings and all(f["title"].startswith(faulty) for f in findings)
    assert report["readiness"]["status"] == "not-ready"
    assert faulty not in {choice["framework"] for choice in report["recommendation"]["choices"]}


@pytest.mark.parametrize("fault, status, code", [
    ({"AUDITOR_TEST_BREAK": "onnxruntime"}, "broken", "EXP001"),
    ({"AUDITOR_TEST_HIDE": "onnxscript"}, "not-installed", None),
])
def test_a_broken_or_missing_export_tool_reaches_the_report_check_and_recommendation(tmp_path, fault, status, code):
    """End to end through `auditor check`: a profile that needs the ONNX path probes only that
    path, and the seam breaks or hides one of its packages in the export child."""
    profile = tmp_path / "onnx.toml"
    profile.write_text('schema = "auditor-profile-v1"\ndescription = "ONNX serving"\n'
                       '[[exports]]\nany-of = ["onnx"]\n')
    env = {**os.environ, **fault, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SEAM), os.environ.get("PYTHONPATH")]))}
    result = run_auditor("check", "--profile", str(profile), "--format", "json", env=env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert list(report["exports"]) == ["onnx"]  # only the path the profile names was converted
    onnx = report["exports"]["onnx"]
    assert onnx["status"] == status
    (requirement,) = [r for r in report["profiles"][0]["requirements"] if r["id"] == "export.onnx"]
    assert requirement["status"] == "fail"
    if code:
        (finding,) = [f for f in report["findings"] if f["code"] == code]
        assert finding["evidence"][0].startswith("onnx: import failed: ImportError: simulated broken install")
        assert requirement["fix"].startswith("EXP001: ")
    else:
        assert onnx["missing"] == ["onnxscript"]
        (row,) = report["readiness"]["exports"]
        assert row["command"] == 'pip install "onnxscript>=0.6"'
        assert requirement["fix"] == '`pip install "onnxscript>=0.6"`'
        (goal,) = report["recommendation"]["goals"]
        assert goal["framework"] == "torch"
        step = next(step for step in goal["next_steps"] if step["reason"] == "onnx: not installed (missing onnxscript)")
        assert (step["action"], step["command"]) == ('`pip install "onnxscript>=0.6"`', 'pip install "onnxscript>=0.6"')
