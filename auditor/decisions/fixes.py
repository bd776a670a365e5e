"""The install command that gives a framework the device kind a requirement asks for."""

from __future__ import annotations

from auditor.builds import FittedBuild, gpu_build_for, torch_rocm_build
from auditor.checks.tpu import TPU_INSTALL
from auditor.facts import Snapshot
from auditor.names import DISPLAY_NAMES

# Sources: pytorch.org/get-started/locally (ROCm wheels at download.pytorch.org/whl/rocmX.Y;
# the macOS arm64 wheel on PyPI includes MPS); tensorflow.org/install/pip (tensorflow-rocm is
# AMD's build); developer.apple.com/metal/tensorflow-plugin and /metal/jax.
MPS_INSTALL = {"torch": "pip install torch", "tensorflow": "pip install tensorflow-metal", "jax": "pip install jax-metal"}
ROCM_INSTALL = {"tensorflow": "pip install tensorflow-rocm"}


def accelerator_build(snapshot: Snapshot, framework: str, kind: str) -> FittedBuild:
    """How to get a build of ``framework`` that runs on devices of ``kind`` (cuda, rocm, tpu, mps)."""
    name = DISPLAY_NAMES.get(framework, framework)
    if kind in ("cuda", "gpu"):
        return gpu_build_for(snapshot, framework)
    if kind == "rocm":
        if framework == "torch":
            installed = snapshot.frameworks.get(framework)
            return torch_rocm_build(snapshot, installed.version if installed else None)
        if framework in ROCM_INSTALL:
            return FittedBuild(ROCM_INSTALL[framework], f"AMD's ROCm build of {name}")
        return FittedBuild(None, f"install {name}'s ROCm build (see its installation guide)")
    if kind == "tpu" and framework in TPU_INSTALL:
        return FittedBuild(TPU_INSTALL[framework], f"{name}'s TPU build")
    if kind == "mps" and framework in MPS_INSTALL:
        return FittedBuild(MPS_INSTALL[framework], f"{name} on Apple silicon GPUs")
    return FittedBuild(None, f"install a build of {name} that supports {kind} devices")
