"""The coreml path: torch.export, converted by coremltools to an ML program and, on macOS, run
by Core ML. Runs only inside a child process.

Conversion works on any platform; running the result needs Core ML, which only macOS has,
so elsewhere a successful conversion makes the path not-applicable rather than ready.
"""

from __future__ import annotations

import os
import platform
import tempfile

from auditor.probes.exports.common import (PathCheck, noticed_warnings, requested, tiny_input_nchw,
                                           torch_tiny_model)

PATHS = ("coreml",)
# ML programs compute in float16 by default (what users ship, and what the Neural Engine
# runs): about three decimal digits, so a correct model is off by ~1e-3, a wrong one by
# order 1.
TOLERANCE = 1e-2


def collect() -> dict:
    return {"paths": {name: check_coreml() for name in requested(PATHS)}}


def check_coreml() -> dict:
    check = PathCheck("coreml", source="torch", tolerance=TOLERANCE)
    with check.running():
        with noticed_warnings() as noticed:
            torch, ct = check.importing("torch", "coremltools")
        # coremltools says so when this torch is newer than any it was tested with.
        untested = [line for line in noticed if line.startswith("Torch version") and "not been tested" in line]
        if untested:
            check.path.details["warning"] = untested[0]
        model, x = torch_tiny_model(torch), tiny_input_nchw()
        with torch.no_grad():
            reference = model(torch.from_numpy(x)).numpy()
        with check.stage("export"):
            exported = torch.export.export(model, (torch.from_numpy(x),)).run_decompositions({})
        # The converted package goes to a directory removed afterwards: coremltools would
        # otherwise make its own and remove it at exit, which the child skips (child.py).
        with tempfile.TemporaryDirectory() as directory:
            with check.stage("convert"):
                converted = ct.convert(exported, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                                       compute_precision=ct.precision.FLOAT16,
                                       package_dir=os.path.join(directory, "tiny.mlpackage"))
            check.path.details["compute_precision"] = "float16"
            if platform.system() != "Darwin":
                check.path.details["predict"] = "Core ML runs models only on macOS"
                check.not_applicable()
            check.path.runtime = f"Core ML (macOS {platform.mac_ver()[0]})"
            description = converted.get_spec().description
            with check.stage("run"):
                output = converted.predict({description.input[0].name: x})[description.output[0].name]
        check.compare(output, reference)
    return check.result()
