"""Rules shared by the checks and the recommendation, written once.

- Whether a build's compiled GPU architectures can run on a GPU (NVIDIA's rules: an sm_XY
  cubin runs on compute capability X.Z for Z >= Y of the same major only; PTX compute_XY can
  be JIT-compiled for any newer GPU. Sources: CUDA C++ Programming Guide, "Binary
  Compatibility" and "PTX Compatibility"; reference notes §1.4, §7.2).
- Which PyTorch CUDA build fits this driver and these GPUs, and the command that installs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

from packaging.version import InvalidVersion, Version

from auditor import knowledge
from auditor.facts import NvidiaGpu, Snapshot

Coverage = Literal["sass", "ptx", "none"]
_ARCH = re.compile(r"^(sm|compute)_(\d+)(\d)[a-z]?$")


def capability(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def parse_architecture(entry: str) -> Optional[tuple[str, tuple[int, int]]]:
    """'sm_86' -> ('sm', (8, 6)); 'compute_120' -> ('compute', (12, 0)); 'sm_90a' -> ('sm', (9, 0))."""
    match = _ARCH.match(entry.strip().lower())
    return (match.group(1), (int(match.group(2)), int(match.group(3)))) if match else None


def coverage(architectures: list[str] | tuple[str, ...], compute_capability: str) -> Coverage:
    device = capability(compute_capability)
    parsed = [p for p in map(parse_architecture, architectures) if p]
    if any(kind == "sm" and cc[0] == device[0] and cc[1] <= device[1] for kind, cc in parsed):
        return "sass"
    if any(kind == "compute" and cc <= device for kind, cc in parsed):
        return "ptx"
    return "none"


def version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def host_os(snapshot: Snapshot) -> Optional[str]:
    host = snapshot.machine.host
    return {"Linux": "linux", "Windows": "windows"}.get(host.os) if host else None


def driver_runs_cuda(driver: str, cuda: str, os: str) -> bool:
    """Whether a driver runs code built with this CUDA: at or above its family's minor-version floor."""
    floor = knowledge.family_floor(int(cuda.split(".")[0]), os)
    driver_version, floor_version = version(driver), version(floor.driver) if floor else None
    return bool(driver_version and floor_version and driver_version >= floor_version)


@dataclass(frozen=True)
class FittedBuild:
    command: Optional[str]  # None when no command can do it (the reason says what must change first)
    reason: str


# JAX's CUDA wheels by CUDA major (jax.readthedocs.io, installation: "jax[cuda12]", "jax[cuda13]").
JAX_CUDA_EXTRAS = (("13", "cuda13"), ("12", "cuda12"))


def gpu_build_for(snapshot: Snapshot, framework: str) -> FittedBuild:
    """How to get a GPU build of this framework on this machine: the command when there is one."""
    installed = snapshot.frameworks.get(framework)
    host = snapshot.machine.host
    if framework == "torch":
        fitted = torch_cuda_build(snapshot, installed.version if installed else None)
        return fitted or FittedBuild(None, "no CUDA build of this torch release runs on this driver with these GPUs: "
                                           "update the NVIDIA driver first")
    if framework == "tensorflow":
        if host and host.os == "Windows":
            return FittedBuild(None, "TensorFlow's GPU build runs only in WSL2 on Windows: `wsl --install`, then "
                                     "`pip install \"tensorflow[and-cuda]\"` inside it")
        tf_version = installed.distribution_version if installed else None
        first = knowledge.tensorflow_rule("and-cuda-extra")
        if tf_version and version(tf_version) and version(tf_version) < version(first):
            release = knowledge.tensorflow_release(tf_version)
            needs = f"CUDA {release.cuda} and cuDNN {release.cudnn}" if release else "its CUDA and cuDNN"
            return FittedBuild(None, f"TensorFlow {tf_version} predates the and-cuda extra ({first}): install {needs} "
                                     "from NVIDIA, or upgrade TensorFlow")
        pin = f"=={tf_version}" if tf_version else ""
        return FittedBuild(f'pip install "tensorflow[and-cuda]{pin}"',
                           "TensorFlow's Linux wheels bring their CUDA libraries with the and-cuda extra")
    if framework == "jax":
        nvidia, os = snapshot.accelerators.nvidia, host_os(snapshot)
        for major, extra in JAX_CUDA_EXTRAS:
            if nvidia and nvidia.driver_version and os and driver_runs_cuda(nvidia.driver_version, major, os):
                return FittedBuild(f'pip install -U "jax[{extra}]"',
                                   f"JAX's CUDA {major} wheels run on driver {nvidia.driver_version}")
        return FittedBuild(None, "no JAX CUDA build runs on this driver: update the NVIDIA driver first")
    return FittedBuild(None, f"see {framework}'s installation guide for its GPU build")


def torch_cuda_build(snapshot: Snapshot, torch_version: Optional[str]) -> Optional[FittedBuild]:
    """The newest stable CUDA variant of this torch release (or of the newest known release) that
    this driver runs and that has kernels for every NVIDIA GPU here; None when none fits."""
    nvidia = snapshot.accelerators.nvidia
    os = host_os(snapshot)
    if not nvidia or not nvidia.driver_version or not os:
        return None
    release = knowledge.torch_release(torch_version) if torch_version else None
    installed = release is not None
    release = release or knowledge.newest_torch_release()
    if not release:
        return None
    gpus = [gpu for gpu in nvidia.gpus if gpu.compute_capability]
    fitting = [variant for variant in release.variants
               if variant.stable and driver_runs_cuda(nvidia.driver_version, variant.cuda, os)
               and all(coverage(variant.architectures, gpu.compute_capability) != "none" for gpu in gpus)]
    if not fitting:
        return None
    best = max(fitting, key=lambda variant: capability(variant.cuda))
    # Keep the installed release (its public version, without +cpu); otherwise the newest.
    pin = f"=={Version(torch_version).base_version}" if installed else f"=={release.version}.*"
    return FittedBuild(f"pip install torch{pin} --index-url {best.index_url}",
                       f"the CUDA {best.cuda} build of torch {release.version} runs on driver "
                       f"{nvidia.driver_version} and has kernels for {_describe(gpus)}")


def _describe(gpus: list[NvidiaGpu]) -> str:
    capabilities = sorted({gpu.compute_capability for gpu in gpus if gpu.compute_capability})
    return "compute capability " + ", ".join(capabilities) if capabilities else "these GPUs"


def export_tool_requirement(snapshot: Snapshot, distribution: str) -> str:
    """The pip requirement for an export tool that fits the installed torch: ExecuTorch pinned to a
    release whose declared torch range admits it, coremltools to one tested with it, onnxscript at
    the version the dynamo exporter needs; any other distribution unpinned."""
    torch = snapshot.packages.get("torch")
    if distribution in ("executorch", "coremltools") and torch:
        fitted = knowledge.export_tool_for_torch(distribution, torch.version)
        return f"{distribution}=={fitted}" if fitted else distribution
    if distribution == "onnxscript":
        return knowledge.export_rule("onnxscript-recommended")
    return distribution


def export_install_command(snapshot: Snapshot, missing: list[str]) -> Optional[str]:
    """`pip install ...` for an export path's missing distributions, fitted to the installed torch."""
    if not missing:
        return None
    requirements = [export_tool_requirement(snapshot, distribution) for distribution in missing]
    return "pip install " + " ".join(f'"{r}"' if any(c in r for c in "<>=") else r for r in requirements)
