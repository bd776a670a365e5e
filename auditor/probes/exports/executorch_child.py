"""The executorch path: torch.export, lowered to XNNPACK, serialized to a .pte program and run
by ExecuTorch's own runtime. Runs only inside a child process.

Lowering serializes the XNNPACK delegate with the flatc tool, which executorch looks for in
this order (executorch/exir/_serialize/_flatbuffer.py, _get_flatc_path): a binary bundled
in the package (executorch/data/bin/flatc in the wheels), then $FLATC_EXECUTABLE, then
flatc on PATH. The details say which one ran.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys

from auditor.probes.exports.common import (PathCheck, requested, tiny_input_nchw, torch_tiny_model,
                                           version_of)

PATHS = ("executorch",)


def collect() -> dict:
    return {"paths": {name: check_executorch() for name in requested(PATHS)}}


def check_executorch() -> dict:
    check = PathCheck("executorch", source="torch")
    with check.running():
        torch, exir, xnnpack, runtime = check.importing(
            "torch", "executorch.exir", "executorch.backends.xnnpack.partition.xnnpack_partitioner",
            "executorch.runtime")
        check.path.runtime = f"executorch {version_of('executorch')}"
        model, x = torch_tiny_model(torch), torch.from_numpy(tiny_input_nchw())
        with torch.no_grad():
            reference = model(x).numpy()
        with check.stage("export"):
            exported = torch.export.export(model, (x,))
        with check.stage("lower"):
            edge = _lower(exir, xnnpack, exported)
        check.path.details.update(_delegation(edge.exported_program().graph_module))
        check.path.details["flatc"] = _flatc_used()
        with check.stage("serialize"):
            program = edge.to_executorch().buffer
        check.path.details["pte_bytes"] = str(len(program))
        with check.stage("load"):
            executor = runtime.Runtime.get()
            method = executor.load_program(program).load_method("forward")
        check.path.details["registered_backends"] = ", ".join(executor.backend_registry.registered_backend_names)
        with check.stage("run"):
            output = method.execute([x])[0]
        check.compare(output.numpy(), reference)
    return check.result()


def _lower(exir, xnnpack, exported):
    try:
        return exir.to_edge_transform_and_lower(exported, partitioner=[xnnpack.XnnpackPartitioner()])
    except FileNotFoundError as exc:
        if "flatc" not in os.path.basename(str(exc.filename)):
            raise
        raise FileNotFoundError(
            f"flatc not found ({exc.filename}): ExecuTorch serializes the XNNPACK delegate with flatc, "
            "which it looks for in the executorch package, then $FLATC_EXECUTABLE, then PATH") from exc


def _delegation(graph_module) -> dict:
    """Which backends took parts of the model, and how many operators stayed outside them
    (those run on ExecuTorch's portable kernels)."""
    delegates = collections.Counter(getattr(child, "backend_id", None) for _, child in graph_module.named_children())
    delegates.pop(None, None)
    outside = [node for node in graph_module.graph.nodes if node.op == "call_function"
               and getattr(node.target, "__name__", "") not in ("executorch_call_delegate", "getitem")]
    return {"delegates": ", ".join(f"{backend} x{count}" for backend, count in sorted(delegates.items())) or "none",
            "ops_not_delegated": str(len(outside))}


def _flatc_used() -> str:
    """The flatc that lowering ran, as executorch cached it (see the module docstring)."""
    serializer = sys.modules.get("executorch.exir._serialize._flatbuffer")
    used = getattr(serializer, "_flatc_cached_path", None)
    if used is None:
        return "unknown (this executorch version does not say)"
    packages = sys.modules["executorch"].__path__  # a namespace package: no __file__
    if any(os.path.abspath(used).startswith(os.path.join(package, "")) for package in packages):
        return f"{used} (bundled with executorch)"
    source = "FLATC_EXECUTABLE" if os.environ.get("FLATC_EXECUTABLE") == used else "PATH"
    return f"{shutil.which(used) or used} ({source})"
