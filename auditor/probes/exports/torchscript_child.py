"""The torchscript path: torch.jit.trace, save, load back, run. Runs only inside a child process.

The round trip through bytes is what a deployment does (a .pt file loaded by another
process or by libtorch), so a model that traces but does not load back is caught here.
"""

from __future__ import annotations

import io

from auditor.probes.exports.common import (PathCheck, noticed_warnings, requested, tiny_input_nchw,
                                           torch_tiny_model, version_of)

PATHS = ("torchscript",)
# Said when torch itself does not warn; the PyTorch docs put TorchScript in maintenance
# mode and point to torch.export.
DEPRECATED = "TorchScript (torch.jit) is deprecated in favour of torch.export"


def collect() -> dict:
    return {"paths": {name: check_torchscript() for name in requested(PATHS)}}


def check_torchscript() -> dict:
    check = PathCheck("torchscript", source="torch")
    noticed: list = []  # what torch warns about while tracing, saving and loading
    with check.running():
        (torch,) = check.importing("torch")
        check.path.runtime = f"torch.jit {version_of('torch')}"
        model, x = torch_tiny_model(torch), torch.from_numpy(tiny_input_nchw())
        with torch.no_grad(), noticed_warnings() as noticed:
            reference = model(x).numpy()
            with check.stage("export"):
                traced = torch.jit.trace(model, (x,))
            with check.stage("save"):
                buffer = io.BytesIO()
                torch.jit.save(traced, buffer)
            check.path.details["model_bytes"] = str(buffer.tell())
            with check.stage("load"):
                buffer.seek(0)
                loaded = torch.jit.load(buffer)
            with check.stage("run"):
                output = loaded(x).numpy()
        check.compare(output, reference)
    # torch.jit.trace, save and load each warn that they are deprecated; trace's comes first.
    check.path.deprecated = next((line for line in noticed if "torch.jit" in line and "deprecated" in line),
                                 DEPRECATED)
    return check.result()
