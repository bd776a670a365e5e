"""EXP: export and serving paths that fail, run on a deprecated runtime, or cannot fit torch.

EXP001-003 and EXP007 read the export paths checked under --deep (snapshot.exports);
EXP004-006 read package metadata against the export-pins knowledge, so they fire in
every audit, --quick included, before anyone tries a conversion.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from auditor import knowledge
from auditor.checks.base import Hit, check
from auditor.facts import ExportPath, Snapshot
from auditor.verdicts import export_install_command, export_tool_requirement, version

# The paths built on torch.export, which replaces TorchScript.
TORCH_EXPORT_PATHS = ("executorch", "onnx", "coreml")
LITERT = "ai-edge-litert"


@check("EXP001", "export-path-broken", "error",
       "An export or serving path is installed but a real conversion failed or gave wrong numbers.",
       "Under --deep (or when a profile asks), the auditor exports a tiny convolutional model down "
       "each path, runs it in the target runtime (LiteRT, TF SavedModel, ExecuTorch, ONNX Runtime, "
       "Core ML, TorchScript) and compares its output with the source model's. A path that raises, "
       "crashes, hangs or answers differently will do the same to a real model.",
       fix="Reproduce the failure with `auditor audit --deep --format json` and read `exports.<path>.stages`; "
           "reinstall the tools it names at versions that fit the installed framework (for ExecuTorch and "
           "coremltools the finding names the `pip install`).",
       example="The onnx export path is broken\n"
               "onnx: compare failed: output differs from the source model by 0.0312 (tolerance 0.0001)")
def export_path_broken(snapshot: Snapshot):
    for path in snapshot.exports.values():
        if path.status == "broken":
            failed = next((stage for stage in path.stages if not stage.ok), None)
            evidence = [f"{path.name}: {path.error}"]
            if failed:
                evidence.append(f"failed at the {failed.name} stage" + (f": {failed.detail}" if failed.detail else ""))
            evidence += [f"{name} {tool_version}" for name, tool_version in path.tools.items()]
            yield Hit(f"The {path.name} export path is broken", evidence, _broken_fix(snapshot, path))


def _broken_fix(snapshot: Snapshot, path: ExportPath) -> str:
    mismatched = [name for name in path.tools if name in ("executorch", "coremltools")
                  and _torch_mismatch(snapshot, name)]
    if mismatched:
        return (f"{mismatched[0]} does not fit the installed torch: "
                f"`pip install \"{export_tool_requirement(snapshot, mismatched[0])}\"`")
    return (f"Reproduce it with `auditor audit --deep --format json` and read exports.{path.name}.stages; "
            "reinstall the tools it names at the versions shown.")


@check("EXP002", "tflite-interpreter-deprecated", "warning",
       "TFLite models ran only through the deprecated tf.lite.Interpreter.",
       "TensorFlow deprecated tf.lite.Interpreter in favour of the LiteRT interpreter from the "
       "ai-edge-litert package, which is what runs .tflite models from now on. The path works "
       "today through the fallback, but the fallback is scheduled for removal from TensorFlow.",
       fix="Install the LiteRT interpreter: `pip install ai-edge-litert`; .tflite models then run on it instead "
           "of the deprecated tf.lite.Interpreter.",
       example="tflite ran on tf.lite.Interpreter (tensorflow 2.18.0), not LiteRT\n"
               "tf.lite.Interpreter is deprecated in favour of the LiteRT interpreter (ai-edge-litert)")
def tflite_interpreter_deprecated(snapshot: Snapshot):
    for path in snapshot.exports.values():
        if path.name.startswith("tflite") and path.status == "ready" and path.deprecated:
            yield Hit(f"{path.name} ran on {path.runtime}, not LiteRT", [path.deprecated],
                      f"`pip install {LITERT}`")


@check("EXP003", "torchscript-only", "warning",
       "TorchScript is the only PyTorch export path that works here, and it is deprecated.",
       "PyTorch has deprecated TorchScript (torch.jit.trace/script) in favour of torch.export, "
       "which feeds ExecuTorch, the ONNX exporter and Core ML. When TorchScript is the one path "
       "that works, deployments rely on a path that receives no new features and will be removed.",
       fix="Move PyTorch exports to torch.export: install what its paths miss (ONNX: `pip install onnx "
           "\"onnxscript>=0.6\" onnxruntime`; ExecuTorch: `pip install \"executorch==<release that fits torch>\"`), "
           "or fix the torch.export paths the audit reports broken.",
       example="Only the deprecated TorchScript path works for PyTorch models here\n"
               "onnx: not-installed")
def torchscript_only(snapshot: Snapshot):
    torchscript = snapshot.exports.get("torchscript")
    if torchscript is None or torchscript.status != "ready":
        return
    checked = [snapshot.exports[name] for name in TORCH_EXPORT_PATHS if name in snapshot.exports]
    if checked and not any(path.status == "ready" for path in checked):
        missing = sorted({d for path in checked if path.status == "not-installed" for d in path.missing})
        command = export_install_command(snapshot, missing)
        yield Hit("Only the deprecated TorchScript path works for PyTorch models here",
                  [torchscript.deprecated or "TorchScript is deprecated"]
                  + [f"{path.name}: {path.status}" + (f" ({path.error})" if path.error else "") for path in checked],
                  f"Move to torch.export: `{command}`" if command else
                  "Move to torch.export; fix the torch.export paths reported broken above.")


@check("EXP004", "executorch-torch-mismatch", "error",
       "The installed ExecuTorch declares a torch range that excludes the installed torch.",
       "Each ExecuTorch release is built against one torch release and declares it (Requires-Dist). "
       "With another torch, torch.export graphs use operators the ExecuTorch lowering does not "
       "know, and conversions fail or crash. Source: the export-pins knowledge, from each wheel's "
       "metadata.",
       fix="Install the ExecuTorch release built for the installed torch (`pip install \"executorch==<release>\"`, "
           "named in the finding), or, where none is known, install the torch the installed ExecuTorch declares.",
       example="executorch 0.6.0 needs torch==2.7.0, but torch 2.8.0 is installed\n"
               "executorch 0.6.0 declares torch==2.7.0 (export-pins knowledge)")
def executorch_mismatch(snapshot: Snapshot):
    if _torch_mismatch(snapshot, "executorch"):
        executorch, torch = snapshot.packages["executorch"], snapshot.packages["torch"]
        spec = knowledge.export_pin("executorch", executorch.version)
        yield Hit(f"executorch {executorch.version} needs {spec}, but torch {torch.version} is installed",
                  [f"executorch {executorch.version} declares {spec} (export-pins knowledge)",
                   f"torch {torch.version} (package metadata)"],
                  f"`pip install \"{export_tool_requirement(snapshot, 'executorch')}\"`"
                  if knowledge.export_tool_for_torch("executorch", torch.version) else
                  f"No known ExecuTorch release fits torch {torch.version}: install the torch it declares.")


@check("EXP005", "coremltools-untested-torch", "info",
       "coremltools was not tested with a torch this new.",
       "coremltools records the newest torch it was tested with and logs 'has not been tested' "
       "above it. Conversion usually works, but operators added since may not convert.",
       fix="Install a coremltools release tested with the installed torch (`pip install "
           "\"coremltools==<release>\"`); where none is known, prove conversion with `auditor audit --deep`, or "
           "convert from an environment with the torch it was tested with.",
       example="coremltools 8.3.0 was tested up to torch 2.5.0; torch 2.7.1 is installed\n"
               "coremltools 8.3.0: torch<=2.5.0 (export-pins knowledge)")
def coremltools_untested(snapshot: Snapshot):
    coreml, torch = snapshot.packages.get("coremltools"), snapshot.packages.get("torch")
    if coreml and torch and _torch_mismatch(snapshot, "coremltools"):
        fitted = knowledge.export_tool_for_torch("coremltools", torch.version)
        tested = knowledge.export_pin("coremltools", coreml.version).removeprefix("torch<=")
        evidence = [f"coremltools {coreml.version}: {knowledge.export_pin('coremltools', coreml.version)} "
                    "(export-pins knowledge)"]
        converted = snapshot.exports.get("coreml")
        proven = converted is not None and any(stage.name == "convert" and stage.ok for stage in converted.stages)
        if proven:
            evidence.append("the --deep conversion of a tiny model to Core ML worked here")
        if fitted:
            fix = f"`pip install \"coremltools=={fitted}\"`"
        elif proven:
            fix = ("No coremltools release is known to be tested with this torch, but conversion works here; if a "
                   f"model's operators fail to convert, convert from an environment with torch {tested}.")
        else:
            fix = ("No coremltools release is known to be tested with this torch: `auditor audit --deep` proves "
                   "whether conversion works here.")
        yield Hit(f"coremltools {coreml.version} was tested up to torch {tested}; torch {torch.version} is installed",
                  evidence, fix)


@check("EXP006", "onnx-exporter-needs-onnxscript", "warning",
       "torch.onnx.export will fail: its default exporter needs onnxscript, which is missing or too old.",
       "From torch 2.9, torch.onnx.export defaults to the dynamo exporter, which imports onnxscript at "
       "export time; torch does not declare it as a dependency, so ONNX export fails with "
       "ModuleNotFoundError: No module named 'onnxscript'. onnxscript before 0.6 rejects the "
       "functions that exporter emits. Sources: the export-pins knowledge rows for torch.onnx.",
       fix="Install onnxscript 0.6 or newer: `pip install \"onnxscript>=0.6\"`.",
       example="torch 2.9.0 exports ONNX with the dynamo exporter, but onnxscript is not installed\n"
               "torch 2.9.0, onnx 1.19.0 (package metadata)")
def onnx_needs_onnxscript(snapshot: Snapshot):
    torch, onnx = snapshot.packages.get("torch"), snapshot.packages.get("onnx")
    if not torch or not onnx or not version(torch.version):
        return
    if Version(Version(torch.version).base_version) < Version(knowledge.export_rule("onnx-dynamo-default-from")):
        return
    onnxscript = snapshot.packages.get("onnxscript")
    wanted = knowledge.export_rule("onnxscript-recommended")
    if onnxscript and SpecifierSet(wanted.removeprefix("onnxscript")).contains(onnxscript.version, prereleases=True):
        return
    found = f"onnxscript {onnxscript.version} is installed" if onnxscript else "onnxscript is not installed"
    yield Hit(f"torch {torch.version} exports ONNX with the dynamo exporter, but {found}",
              [f"torch {torch.version}, onnx {onnx.version} (package metadata)",
               knowledge.export_rule("onnx-dynamo-needs") + f" needed: {wanted}"],
              f"`pip install \"{wanted}\"`")


@check("EXP007", "model-server-not-installed", "info",
       "SavedModels work here, but no TensorFlow Serving binary is on PATH.",
       "The tf-serving path proved that a SavedModel saves, reloads and answers through its "
       "serving signature. Serving it needs tensorflow_model_server, which pip does not install "
       "(tensorflow-serving-api is only the client); it comes from the tensorflow/serving "
       "container image or TensorFlow's apt repository.",
       fix="Serve from the official image: `docker run -p 8501:8501 -v $PWD/model:/models/model -e "
           "MODEL_NAME=model tensorflow/serving`, or install tensorflow-model-server from TensorFlow Serving's "
           "apt repository.",
       example="tensorflow_model_server is not on PATH\n"
               "tf-serving: SavedModel ready; tensorflow_model_server: not on PATH; tensorflow-serving-api: "
               "2.18.0")
def model_server_missing(snapshot: Snapshot):
    serving = snapshot.exports.get("tf-serving")
    if serving and serving.status == "ready" and serving.details.get("tensorflow_model_server") == "not on PATH":
        yield Hit("tensorflow_model_server is not on PATH",
                  [f"tf-serving: SavedModel ready; tensorflow_model_server: not on PATH; tensorflow-serving-api: "
                   f"{serving.details.get('tensorflow-serving-api', 'unknown')}"],
                  "Serve from the official image: `docker run -p 8501:8501 -v $PWD/model:/models/model "
                  "-e MODEL_NAME=model tensorflow/serving`")


def _torch_mismatch(snapshot: Snapshot, tool: str) -> bool:
    """Whether the installed tool's known torch pin excludes the installed torch."""
    installed, torch = snapshot.packages.get(tool), snapshot.packages.get("torch")
    if not installed or not torch or not version(torch.version):
        return False
    spec = knowledge.export_pin(tool, installed.version)
    if spec is None:
        return False
    torch_version = Version(Version(torch.version).public)
    if tool == "coremltools":  # tested up to a minor; its later patches count as tested
        tested = Version(spec.removeprefix("torch<="))
        return torch_version.release[:2] > tested.release[:2]
    return not SpecifierSet(spec.removeprefix("torch")).contains(torch_version, prereleases=True)
