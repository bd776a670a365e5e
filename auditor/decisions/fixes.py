"""The install command that gives a framework the device kind a requirement asks for."""

from __future__ import annotations

from auditor.builds import FittedBuild, gpu_build_for, torch_rocm_build
from auditor.checks.tpu import TPU_INSTALL
from auditor.facts import Snapshot
from auditor.names import DISPLAY_NAMES

# Sources: pytorch.org/get-started/locally (ROCm wheels at download.pytorch.org/whl/rocmX.Y;
# the macOS arm64 wheel on PyPI includes MPS); tensorflow.org/install/pip (tensorflow-rocm is
# AMD's build); developer.apple.com/metal/tensorflow-plugin and /metal/jax.
# Where each kind of accelerator is to be had: a step says which machine to use, never only
# that this one lacks it. Examples are current cloud offerings (AWS EC2 accelerated computing
# instances, Google Cloud GPU and TPU VMs, Azure N-series) and Apple's Metal requirements.
MOVE_MACHINE = "Move this work to a machine with"
MACHINES = {
    "cuda": "an NVIDIA GPU (a cloud VM with an L4, A10G, A100 or H100: AWS g6/g5/p4d/p5, Google Cloud g2/a2/a3, "
            "Azure NC/ND; or a workstation with a GeForce or RTX card)",
    "rocm": "an AMD GPU that ROCm supports (an Instinct MI210/MI250/MI300X node such as Azure ND MI300X v5, or a "
            "Radeon RX 7900 workstation)",
    "gpu": "an NVIDIA or AMD GPU (a cloud VM with an L4, A10G, A100, H100 or MI300X: AWS g6/g5/p5, Google Cloud "
           "g2/a3, Azure NC/ND)",
    "tpu": "Cloud TPUs (a Google Cloud TPU VM, e.g. v5e or v6e, with JAX or TensorFlow)",
    "mps": "Apple silicon (a Mac with an M1 or newer chip, on macOS 12.3 or later)",
    "any": "an accelerator (an NVIDIA or AMD GPU, a Google Cloud TPU VM, or an Apple silicon Mac)",
}


def move_machine(kind: str, limits: str = "") -> str:
    """The step for a goal whose hardware this machine lacks: which machine to use instead."""
    return f"{MOVE_MACHINE} {MACHINES.get(kind, MACHINES['any'])}{limits}."


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
