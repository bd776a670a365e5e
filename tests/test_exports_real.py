"""The export-path children, run for real through the child mechanism, and with import faults
injected by the sitecustomize seam (tests/fakes/sitecustomize).

Every child of this file starts at once in one module-scoped fixture: conversions are CPU
bound, but each child spends seconds importing, and together they finish in about the time
of the slowest (coremltools, which imports TensorFlow as well as torch).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from auditor.facts import ExportPath, from_dict
from auditor.probes.base import EXPORT_PATHS
from auditor.probes.child import RunningChild
from auditor.probes.exports.common import FLOAT_TOLERANCE
from auditor.probes.exports.coreml_child import TOLERANCE as COREML_TOLERANCE
from auditor.probes.exports.tensorflow_child import INT8_TOLERANCE

SEAM = Path(__file__).parent / "fakes" / "sitecustomize"
PACKAGE = "auditor.probes.exports"

# scenario -> (child module, extra environment, whether the seam is on its path)
SCENARIOS = {
    "tensorflow": ("tensorflow_child", {}, False),
    "onnx": ("onnx_child", {}, False),
    "executorch": ("executorch_child", {}, False),
    "coreml": ("coreml_child", {}, False),
    "torchscript": ("torchscript_child", {}, False),
    "tflite only": ("tensorflow_child", {EXPORT_PATHS: "tflite"}, False),
    "no onnxscript": ("onnx_child", {"AUDITOR_TEST_HIDE": "onnxscript"}, True),
    "broken onnxruntime": ("onnx_child", {"AUDITOR_TEST_BREAK": "onnxruntime"}, True),
    "no executorch": ("executorch_child", {"AUDITOR_TEST_HIDE": "executorch"}, True),
    "no coremltools": ("coreml_child", {"AUDITOR_TEST_HIDE": "coremltools"}, True),
    "no litert": ("tensorflow_child", {"AUDITOR_TEST_HIDE": "ai_edge_litert", EXPORT_PATHS: "tflite,tflite-int8"},
                  True),
    "no tensorflow": ("tensorflow_child", {"AUDITOR_TEST_HIDE": "tensorflow"}, True),
}


def distribution(module: str):
    """The installed distribution providing a module, None when there is none."""
    found = metadata.packages_distributions().get(module)
    return found[0] if found else None


def version(module: str) -> str:
    return metadata.version(distribution(module))


def needs(*modules: str) -> None:
    missing = [module for module in modules if distribution(module) is None]
    if missing:
        pytest.skip(f"not installed here: {', '.join(missing)}")


@pytest.fixture(scope="module")
def children() -> dict:
    base = {key: value for key, value in os.environ.items() if not key.startswith("AUDITOR_")}
    base.update(TF_CPP_MIN_LOG_LEVEL="3")
    started = {}
    for scenario, (module, extra, seam) in SCENARIOS.items():
        env = {**base, **extra}
        if seam:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SEAM), base.get("PYTHONPATH")]))
        started[scenario] = RunningChild(f"{PACKAGE}.{module}", 300, env)
    return started


@pytest.fixture(scope="module")
def outcomes(children):
    return {scenario: child.wait() for scenario, child in children.items()}


def paths_of(outcomes, scenario: str) -> dict:
    outcome = outcomes[scenario]
    assert outcome.status == "ok", outcome.reason
    paths = outcome.payload["paths"]
    for name, facts in paths.items():
        assert set(facts) == {f.name for f in dataclasses.fields(ExportPath)}, name
        assert from_dict(ExportPath, facts).name == name
    return paths


def assert_matched(path: dict, tolerance: float, stages: list[str]) -> None:
    assert path["status"] == "ready", path
    assert path["tolerance"] == tolerance
    assert 0 <= path["max_relative_error"] <= tolerance
    assert [stage["name"] for stage in path["stages"]] == stages
    assert all(stage["ok"] for stage in path["stages"]), path["stages"]
    assert path["seconds"] >= sum(stage["seconds"] for stage in path["stages"]) > 0
    assert path["error"] is None and path["missing"] == []


# --- the real paths ------------------------------------------------------------------


def test_tflite_runs_in_litert_and_matches_tensorflow(outcomes):
    needs("tensorflow", "ai_edge_litert")
    paths = paths_of(outcomes, "tensorflow")
    assert list(paths) == ["tflite", "tflite-int8", "tf-serving"]
    tflite = paths["tflite"]
    assert_matched(tflite, FLOAT_TOLERANCE, ["import", "convert", "load", "run", "compare"])
    assert tflite["source"] == "tensorflow"
    assert tflite["runtime"] == f"ai_edge_litert {version('ai_edge_litert')}"
    assert tflite["tools"] == {distribution("tensorflow"): version("tensorflow"),
                               distribution("ai_edge_litert"): version("ai_edge_litert")}
    assert tflite["deprecated"] is None
    assert tflite["details"]["input_dtype"] == tflite["details"]["output_dtype"] == "float32"
    assert int(tflite["details"]["model_bytes"]) > 0


def test_tflite_int8_is_really_quantized_and_close(outcomes):
    needs("tensorflow", "ai_edge_litert")
    int8 = paths_of(outcomes, "tensorflow")["tflite-int8"]
    assert_matched(int8, INT8_TOLERANCE, ["import", "convert", "load", "run", "compare"])
    assert int8["details"]["input_dtype"] == int8["details"]["output_dtype"] == "int8"
    # Rounding to 256 levels shows: a float model slipped through would match to ~1e-7.
    assert int8["max_relative_error"] > FLOAT_TOLERANCE


def test_tf_serving_round_trips_a_savedmodel_signature(outcomes):
    needs("tensorflow")
    serving = paths_of(outcomes, "tensorflow")["tf-serving"]
    assert_matched(serving, FLOAT_TOLERANCE, ["import", "save", "load", "run", "compare"])
    assert serving["runtime"] == f"tf.saved_model (tensorflow {version('tensorflow')})"
    assert serving["tools"] == {distribution("tensorflow"): version("tensorflow")}
    details = serving["details"]
    assert details["signature_inputs"] == "x: float32 [2, 8, 8, 3]"
    assert details["signature_outputs"] == "output_0: float32 [2, 5]"
    assert details["tensorflow_model_server"] == (shutil.which("tensorflow_model_server") or "not on PATH")
    try:
        api = metadata.version("tensorflow-serving-api")
    except metadata.PackageNotFoundError:
        api = "not installed"
    assert details["tensorflow-serving-api"] == api


def test_tensorflow_paths_share_one_import(outcomes):
    needs("tensorflow")
    imports = [path["stages"][0] for path in paths_of(outcomes, "tensorflow").values()]
    assert imports[0]["name"] == "import" and all(stage == imports[0] for stage in imports)


def test_onnx_runs_in_onnxruntime_on_the_providers_it_reports(outcomes):
    needs("torch", "onnx", "onnxscript", "onnxruntime")
    onnx = paths_of(outcomes, "onnx")["onnx"]
    assert_matched(onnx, FLOAT_TOLERANCE, ["import", "export", "check", "load", "run", "compare"])
    assert onnx["source"] == "torch"
    assert onnx["runtime"] == f"onnxruntime {version('onnxruntime')}"
    assert onnx["tools"] == {distribution(m): version(m) for m in ("torch", "onnx", "onnxscript", "onnxruntime")}
    details = onnx["details"]
    assert details["providers_used"] == "CPUExecutionProvider"  # a CPU-only machine
    assert "CPUExecutionProvider" in details["providers_available"].split(", ")
    assert "CPUExecutionProvider" in details["providers_registered"].split(", ")
    assert int(details["opset"]) >= 18 and int(details["model_bytes"]) > 0


def test_executorch_runs_the_xnnpack_program_in_its_runtime(outcomes):
    needs("torch", "executorch")
    executorch = paths_of(outcomes, "executorch")["executorch"]
    assert_matched(executorch, FLOAT_TOLERANCE, ["import", "export", "lower", "serialize", "load", "run", "compare"])
    assert executorch["runtime"] == f"executorch {version('executorch')}"
    assert executorch["tools"] == {distribution("torch"): version("torch"),
                                   distribution("executorch"): version("executorch")}
    details = executorch["details"]
    assert details["delegates"] == "XnnpackBackend x1" and details["ops_not_delegated"] == "0"
    assert "XnnpackBackend" in details["registered_backends"].split(", ")
    assert int(details["pte_bytes"]) > 0
    flatc = details["flatc"].rsplit(" (", 1)[0]
    assert Path(flatc).is_file() and os.access(flatc, os.X_OK), details["flatc"]


def test_coreml_converts_and_runs_only_on_macos(outcomes):
    needs("torch", "coremltools")
    coreml = paths_of(outcomes, "coreml")["coreml"]
    assert coreml["tools"] == {distribution("torch"): version("torch"),
                               distribution("coremltools"): version("coremltools")}
    assert coreml["tolerance"] == COREML_TOLERANCE
    if platform.system() == "Darwin":
        assert_matched(coreml, COREML_TOLERANCE, ["import", "export", "convert", "run", "compare"])
        return
    assert coreml["status"] == "not-applicable" and coreml["error"] is None
    assert [(stage["name"], stage["ok"]) for stage in coreml["stages"]] == [
        ("import", True), ("export", True), ("convert", True)]
    assert coreml["details"]["predict"] == "Core ML runs models only on macOS"
    assert coreml["runtime"] is None and coreml["max_relative_error"] is None
    # coremltools logs this when torch is newer than any it was tested with (9.0: torch 2.7).
    assert coreml["details"].get("warning", "Torch version").startswith("Torch version")


def test_torchscript_round_trips_and_says_it_is_deprecated(outcomes):
    needs("torch")
    torchscript = paths_of(outcomes, "torchscript")["torchscript"]
    assert_matched(torchscript, FLOAT_TOLERANCE, ["import", "export", "save", "load", "run", "compare"])
    assert torchscript["runtime"] == f"torch.jit {version('torch')}"
    assert torchscript["tools"] == {distribution("torch"): version("torch")}
    assert "deprecated" in torchscript["deprecated"] and "torch.export" in torchscript["deprecated"]


def test_only_the_paths_asked_for_are_checked(outcomes):
    needs("tensorflow", "ai_edge_litert")
    paths = paths_of(outcomes, "tflite only")
    assert list(paths) == ["tflite"] and paths["tflite"]["status"] == "ready"


def test_children_leave_no_temporary_files(children, outcomes):
    """Each child's TMPDIR (where converters and compilers leave files) is gone once it ended."""
    for child in children.values():
        assert not os.path.exists(child.scratch)


# --- faults injected at import time --------------------------------------------------


def test_missing_onnxscript_makes_onnx_not_installed(outcomes):
    needs("torch", "onnx", "onnxruntime")
    onnx = paths_of(outcomes, "no onnxscript")["onnx"]
    assert onnx["status"] == "not-installed" and onnx["missing"] == ["onnxscript"]
    assert onnx["stages"] == [{"name": "import", "ok": False, "seconds": onnx["stages"][0]["seconds"],
                               "detail": "not installed: onnxscript"}]


def test_broken_onnxruntime_is_broken_not_missing(outcomes):
    needs("torch", "onnx", "onnxscript")
    onnx = paths_of(outcomes, "broken onnxruntime")["onnx"]
    assert onnx["status"] == "broken" and onnx["missing"] == []
    assert onnx["error"].startswith("import failed: ImportError: simulated broken install: libonnxruntime.so")


def test_missing_executorch_makes_executorch_not_installed(outcomes):
    needs("torch")
    executorch = paths_of(outcomes, "no executorch")["executorch"]
    assert executorch["status"] == "not-installed" and executorch["missing"] == ["executorch"]


def test_missing_coremltools_makes_coreml_not_installed(outcomes):
    needs("torch")
    coreml = paths_of(outcomes, "no coremltools")["coreml"]
    assert coreml["status"] == "not-installed" and coreml["missing"] == ["coremltools"]


def test_without_litert_tflite_falls_back_to_the_deprecated_tf_lite_interpreter(outcomes):
    """TensorFlow 2.21 still ships tf.lite.Interpreter, and warns that it is deprecated."""
    needs("tensorflow")
    paths = paths_of(outcomes, "no litert")
    assert list(paths) == ["tflite", "tflite-int8"]
    for name, tolerance in (("tflite", FLOAT_TOLERANCE), ("tflite-int8", INT8_TOLERANCE)):
        path = paths[name]
        assert_matched(path, tolerance, ["import", "convert", "load", "run", "compare"])
        assert path["runtime"] == f"tf.lite.Interpreter (tensorflow {version('tensorflow')})"
        assert path["tools"] == {distribution("tensorflow"): version("tensorflow")}
        assert path["details"]["ai_edge_litert"] == "not installed"
        assert path["deprecated"].startswith("Warning: tf.lite.Interpreter is deprecated")
        assert "ai_edge_litert" in path["deprecated"]


def test_missing_tensorflow_makes_every_tensorflow_path_not_installed(outcomes):
    paths = paths_of(outcomes, "no tensorflow")
    assert list(paths) == ["tflite", "tflite-int8", "tf-serving"]
    for path in paths.values():
        assert path["status"] == "not-installed" and path["missing"] == ["tensorflow"]
        assert path["tools"] == {} and path["runtime"] is None
