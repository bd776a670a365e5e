"""The onnx path: torch.onnx.export (dynamo), onnx.checker, onnxruntime. Runs only inside a child process.

onnxruntime quietly runs a node on the CPU when the provider asked for cannot take it, so
the providers reported are the ones its profiler saw executing nodes, not the ones listed.
"""

from __future__ import annotations

import json
import os
import tempfile

from auditor.probes.exports.common import (PathCheck, requested, tiny_input_nchw, torch_tiny_model,
                                           version_of)

PATHS = ("onnx",)


def collect() -> dict:
    return {"paths": {name: check_onnx() for name in requested(PATHS)}}


def check_onnx() -> dict:
    check = PathCheck("onnx", source="torch")
    # onnxruntime (1.2x, Linux too) otherwise writes a device id and a telemetry event store
    # under ~/.cache/Microsoft/DeveloperTools when imported; the audit writes nothing of its
    # own outside temporary directories. It reads this variable when it loads.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    with check.running():
        # The dynamo exporter, torch's default, writes the graph with onnxscript.
        torch, onnx, _, ort = check.importing("torch", "onnx", "onnxscript", "onnxruntime")
        check.path.runtime = f"onnxruntime {version_of('onnxruntime')}"
        model, x = torch_tiny_model(torch), tiny_input_nchw()
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        with check.stage("export"):
            proto = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, verbose=False).model_proto
        with check.stage("check"):
            onnx.checker.check_model(proto)
            serialized = proto.SerializeToString()
        check.path.details["opset"] = next((str(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                                           "none")
        check.path.details["model_bytes"] = str(len(serialized))
        check.path.details["providers_available"] = ", ".join(ort.get_available_providers())
        with tempfile.TemporaryDirectory() as directory:
            with check.stage("load"):
                options = ort.SessionOptions()
                options.enable_profiling = True
                options.profile_file_prefix = os.path.join(directory, "profile")
                session = ort.InferenceSession(serialized, options, providers=ort.get_available_providers())
            check.path.details["providers_registered"] = ", ".join(session.get_providers())
            with check.stage("run"):
                output = session.run(None, {session.get_inputs()[0].name: x})[0]
                trace = session.end_profiling()
            check.path.details["providers_used"] = ", ".join(_providers_in(trace))
        check.compare(output, reference)
    return check.result()


def _providers_in(trace_file: str) -> list[str]:
    """The execution providers that ran nodes, from onnxruntime's Chrome-trace profile."""
    with open(trace_file) as trace:
        events = json.load(trace)
    return sorted({event["args"]["provider"] for event in events
                   if event.get("cat") == "Node" and "provider" in event.get("args", {})})
