"""The EXP checks and the export readiness, table-driven: each fires on its case and not on the near miss."""

from __future__ import annotations

import pytest

from auditor import knowledge
from auditor.checks import run_checks
from auditor.facts import ExportPath, ExportStage, PackageFacts
from auditor.decisions.readiness import assess
from auditor.verdicts import export_install_command
from conftest import quick_snapshot
from machines import linux_machine


@pytest.fixture
def snapshot(fake_root):
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.mode = "deep"
    snapshot.frameworks = {}
    snapshot.packages = {"torch": PackageFacts("torch", "2.13.0+cpu", modules=["torch"])}
    return snapshot


def exp_codes(snapshot) -> list[str]:
    return [f.code for f in run_checks(snapshot) if f.code.startswith("EXP")]


def ready(name: str, **extra) -> ExportPath:
    return ExportPath(name, "ready", runtime="runtime 1.0", seconds=0.5, max_relative_error=1e-7, tolerance=1e-4, **extra)


def test_a_broken_path_is_an_error_naming_its_failed_stage(snapshot):
    snapshot.exports["onnx"] = ExportPath(
        "onnx", "broken", tools={"torch": "2.13.0+cpu", "onnxruntime": "1.32.0"},
        error="ImportError: simulated broken install", stages=[ExportStage("export", True, 2.1),
                                                               ExportStage("run", False, 0.1, "ImportError")])
    (finding,) = run_checks(snapshot)
    assert (finding.code, finding.severity) == ("EXP001", "error")
    assert finding.evidence[:2] == ["onnx: ImportError: simulated broken install", "failed at the run stage: ImportError"]
    assert "onnxruntime 1.32.0" in finding.evidence
    assert assess(snapshot, [finding]).exports[0].status == "broken"
    snapshot.exports["onnx"] = ready("onnx")
    assert exp_codes(snapshot) == []


def test_broken_executorch_next_to_a_mismatched_torch_gets_the_fitted_pin(snapshot):
    snapshot.packages["executorch"] = PackageFacts("executorch", "1.0.1", modules=["executorch"])
    snapshot.exports["executorch"] = ExportPath("executorch", "broken", tools={"executorch": "1.0.1"},
                                                error="RuntimeError: unknown operator")
    findings = {f.code: f for f in run_checks(snapshot)}
    assert set(findings) == {"EXP001", "EXP004"}
    fitted = knowledge.export_tool_for_torch("executorch", "2.13.0")
    assert fitted == "1.4.1"  # the newest release whose declared torch range admits 2.13 (1.5 declares none)
    assert f'pip install "executorch=={fitted}"' in findings["EXP001"].fix
    assert findings["EXP004"].title == "executorch 1.0.1 needs torch>=2.9,<2.10, but torch 2.13.0+cpu is installed"


@pytest.mark.parametrize("executorch, torch, fires", [
    ("1.0.1", "2.13.0+cpu", True),
    ("1.0.1", "2.9.1", False),
    ("1.4.1", "2.13.0+cpu", False),
    ("1.4.1", "2.12.1", True),  # >=2.13.0a0
    ("1.5.1", "2.12.1", False),  # declares no torch requirement: nothing to judge
])
def test_executorch_torch_mismatch(snapshot, executorch, torch, fires):
    snapshot.mode = "quick"  # package metadata is enough: no conversion needed
    snapshot.packages["torch"] = PackageFacts("torch", torch, modules=["torch"])
    snapshot.packages["executorch"] = PackageFacts("executorch", executorch, modules=["executorch"])
    assert exp_codes(snapshot) == (["EXP004"] if fires else [])


def test_tflite_through_the_deprecated_interpreter_is_a_warning(snapshot):
    deprecated = "tf.lite.Interpreter is deprecated; use the LiteRT interpreter from ai-edge-litert"
    snapshot.exports["tflite"] = ready("tflite", deprecated=deprecated)
    snapshot.exports["tflite"].runtime = "tf.lite.Interpreter (tensorflow 2.21.0)"
    (finding,) = run_checks(snapshot)
    assert (finding.code, finding.severity, finding.fix) == ("EXP002", "warning", "`pip install ai-edge-litert`")
    snapshot.exports["tflite"] = ready("tflite")
    assert exp_codes(snapshot) == []


def test_torchscript_as_the_only_working_torch_path_is_a_warning(snapshot):
    snapshot.exports["torchscript"] = ready("torchscript", deprecated="TorchScript is deprecated")
    snapshot.exports["executorch"] = ExportPath("executorch", "not-installed", missing=["executorch"])
    snapshot.exports["onnx"] = ExportPath("onnx", "not-installed", missing=["onnxscript", "onnxruntime"])
    (finding,) = run_checks(snapshot)
    assert finding.code == "EXP003"
    assert finding.fix == 'Move to torch.export: `pip install "executorch==1.4.1" onnxruntime "onnxscript>=0.6"`'
    snapshot.exports["onnx"] = ready("onnx")  # one torch.export path works: TorchScript is not relied on
    assert exp_codes(snapshot) == []


@pytest.mark.parametrize("coremltools, torch, fires", [
    ("9.0", "2.13.0+cpu", True),  # tested up to torch 2.7
    ("9.0", "2.7.1", False),  # a later patch of the tested minor counts as tested
    ("8.0", "2.7.0", True),
])
def test_coremltools_untested_torch_is_information(snapshot, coremltools, torch, fires):
    snapshot.packages["torch"] = PackageFacts("torch", torch, modules=["torch"])
    snapshot.packages["coremltools"] = PackageFacts("coremltools", coremltools, modules=["coremltools"])
    findings = [f for f in run_checks(snapshot) if f.code.startswith("EXP")]
    assert [(f.code, f.severity) for f in findings] == ([("EXP005", "info")] if fires else [])


@pytest.mark.parametrize("torch, onnxscript, fires", [
    ("2.13.0+cpu", None, True),
    ("2.13.0+cpu", "0.5.4", True),  # too old for the functions the exporter emits
    ("2.13.0+cpu", "0.7.2", False),
    ("2.8.0", None, False),  # the TorchScript-based exporter was still the default
])
def test_onnx_export_needs_onnxscript(snapshot, torch, onnxscript, fires):
    snapshot.packages["torch"] = PackageFacts("torch", torch, modules=["torch"])
    snapshot.packages["onnx"] = PackageFacts("onnx", "1.23.2", modules=["onnx"])
    if onnxscript:
        snapshot.packages["onnxscript"] = PackageFacts("onnxscript", onnxscript, modules=["onnxscript"])
    findings = [f for f in run_checks(snapshot) if f.code.startswith("EXP")]
    assert [f.code for f in findings] == (["EXP006"] if fires else [])
    if fires:
        assert findings[0].fix == '`pip install "onnxscript>=0.6"`'


def test_saved_model_without_a_model_server_is_information(snapshot):
    snapshot.exports["tf-serving"] = ready("tf-serving", details={"tensorflow_model_server": "not on PATH",
                                                                  "tensorflow-serving-api": "not installed"})
    (finding,) = run_checks(snapshot)
    assert (finding.code, finding.severity) == ("EXP007", "info")
    assert "tensorflow/serving" in finding.fix
    snapshot.exports["tf-serving"].details["tensorflow_model_server"] = "/usr/bin/tensorflow_model_server"
    assert exp_codes(snapshot) == []


def test_export_readiness_gives_each_status_its_detail_and_command(snapshot):
    snapshot.exports = {
        "tflite": ready("tflite"),
        "executorch": ExportPath("executorch", "not-installed", missing=["executorch"]),
        "coreml": ExportPath("coreml", "not-applicable", stages=[ExportStage("export", True), ExportStage("convert", True)],
                             details={"predict": "Core ML runs models only on macOS"}),
    }
    rows = {row.path: row for row in assess(snapshot, []).exports}
    assert rows["tflite"].detail == "runtime 1.0: output matched the source model within 1.0e-07 in 0.5 s"
    assert rows["executorch"].command == 'pip install "executorch==1.4.1"'
    assert rows["coreml"].detail == "Core ML runs models only on macOS (export, convert passed here)"
    assert rows["coreml"].command is None


def test_install_commands_fit_the_installed_torch(snapshot):
    assert export_install_command(snapshot, ["onnx", "onnxscript", "onnxruntime"]) == \
        'pip install onnx "onnxscript>=0.6" onnxruntime'
    snapshot.packages["torch"] = PackageFacts("torch", "2.9.1", modules=["torch"])
    assert export_install_command(snapshot, ["executorch"]) == 'pip install "executorch==1.0.1"'
    assert export_install_command(snapshot, ["coremltools"]) == "pip install coremltools"  # none tested with 2.9
    assert export_install_command(snapshot, []) is None


def test_coremltools_finding_says_when_deep_proved_the_conversion(snapshot):
    snapshot.packages["coremltools"] = PackageFacts("coremltools", "9.0", modules=["coremltools"])
    (finding,) = [f for f in run_checks(snapshot) if f.code == "EXP005"]
    assert "`auditor audit --deep` proves" in finding.fix
    snapshot.exports["coreml"] = ExportPath("coreml", "not-applicable", stages=[ExportStage("convert", True)])
    (finding,) = [f for f in run_checks(snapshot) if f.code == "EXP005"]
    assert finding.evidence[-1] == "the --deep conversion of a tiny model to Core ML worked here"
    assert "conversion works here" in finding.fix
