"""What a machine is, as the facts that decide its verdicts: the driver, the CUDA it supports, each
framework's version and build, the NCCL it bundles, the GPUs, Python, the packages that matter.

`auditor diff` shows these as the differences that explain a changed verdict, and a fleet groups
its nodes by them and names the skew between groups. Noise (timestamps, free memory, clocks,
temperatures, UUIDs, serials, probe durations) is never part of a configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

from auditor.facts import Snapshot

# What an entry is about: the fleet's skew findings are per aspect (see auditor/checks/fleet.py).
Aspect = Literal["python", "os", "cpu", "gpu", "driver", "cuda-driver", "cuda-toolkit", "nccl", "nccl-net",
                 "framework", "package"]

# Packages whose version changes what a framework loads or how a distributed job behaves: the
# frameworks and their plugins, the CUDA libraries pip installs beside them, the export runtimes.
_PACKAGES_THAT_MATTER = re.compile(
    r"^(torch|torchvision|torchaudio|triton|pytorch-triton.*|tensorflow.*|tf-nightly|tf-keras|keras|jax|jaxlib|"
    r"jax-cuda\d+-(plugin|pjrt)|libtpu.*|nvidia-.*|onnx|onnxruntime.*|executorch|ai-edge-litert|coremltools|"
    r"deepspeed|accelerate|flash-attn|xformers|apex|horovod|mpi4py|ray|intel-extension-for-pytorch)$")
# pip's wheels of NCCL: what torch and JAX load on Linux, whatever the system has.
_NCCL_PACKAGES = re.compile(r"^nvidia-nccl-cu\d+$")


@dataclass(frozen=True)
class ConfigEntry:
    key: str  # stable: "nvidia.driver", "torch.build", "package.nvidia-nccl-cu12"
    label: str  # for people: "NVIDIA driver", "PyTorch build"
    value: Optional[str]  # None: not measured on this machine
    aspect: Aspect
    framework: Optional[str] = None  # the framework it concerns, when it concerns one


def configuration(snapshot: Snapshot) -> dict[str, ConfigEntry]:
    """The machine's configuration, in the order people read it: Python, the system, the GPUs and
    their driver, each framework, then the packages that matter. An entry is present only when
    the machine has the thing (a framework, NVIDIA GPUs); its value is None when not measured."""
    entries: list[ConfigEntry] = []
    add = entries.append
    machine, accelerators = snapshot.machine, snapshot.accelerators
    python = machine.python
    add(ConfigEntry("python", "Python", f"{python.implementation} {python.version}" if python else None, "python"))
    host = machine.host
    if host:
        add(ConfigEntry("os", "Operating system", host.os_release or host.os, "os"))
        add(ConfigEntry("kernel", "Kernel", host.kernel, "os"))
    if machine.cpu:
        add(ConfigEntry("cpu", "CPU", machine.cpu.model, "cpu"))
    nvidia, kernel = accelerators.nvidia, accelerators.nvidia_kernel
    if nvidia and nvidia.gpus:
        add(ConfigEntry("nvidia.gpus", "NVIDIA GPUs", _counted(gpu.name for gpu in nvidia.gpus), "gpu"))
        add(ConfigEntry("nvidia.driver", "NVIDIA driver", nvidia.driver_version or (kernel and kernel.driver_version),
                        "driver"))
        add(ConfigEntry("nvidia.cuda", "CUDA the driver supports", nvidia.cuda_driver_version, "cuda-driver"))
    elif kernel and kernel.driver_version:
        add(ConfigEntry("nvidia.driver", "NVIDIA driver", kernel.driver_version, "driver"))
    amd = accelerators.amd
    if amd and amd.gpus:
        add(ConfigEntry("amd.gpus", "AMD GPUs", _counted(gpu.gfx_target or gpu.name for gpu in amd.gpus), "gpu"))
        add(ConfigEntry("amd.rocm", "ROCm", amd.rocm_version, "driver"))
    tpu = accelerators.tpu
    if tpu and tpu.signals:
        add(ConfigEntry("tpu", "TPU", tpu.accelerator_type or (f"{tpu.chip_count} chips" if tpu.chip_count else None),
                        "gpu"))
    toolkit = accelerators.cuda_toolkit
    if toolkit and (toolkit.nvcc_version or toolkit.libraries):
        add(ConfigEntry("cuda.toolkit", "System CUDA toolkit (nvcc)", toolkit.nvcc_version, "cuda-toolkit"))
    if toolkit is not None and (nvidia and nvidia.gpus or toolkit.libraries):
        plugin = next((path for soname, path in toolkit.libraries.items() if soname.startswith("libnccl-net")), None)
        add(ConfigEntry("nccl.net_plugin", "NCCL net plugin (libnccl-net.so)", plugin or "none", "nccl-net"))
    for name in sorted(snapshot.frameworks):
        fw = snapshot.frameworks[name]
        build = fw.build
        add(ConfigEntry(f"{name}.version", f"{name} version", fw.version or fw.distribution_version, "framework", name))
        if build:
            add(ConfigEntry(f"{name}.build", f"{name} build", _build(build), "framework", name))
            if build.compiled_architectures:
                add(ConfigEntry(f"{name}.architectures", f"{name} compiled architectures",
                                " ".join(build.compiled_architectures), "framework", name))
            if build.details.get("nccl"):
                add(ConfigEntry(f"{name}.nccl", f"NCCL {name} loads", build.details["nccl"], "nccl", name))
    # A probed framework's distribution is its entries above already.
    probed = {name for fw in snapshot.frameworks.values() for name in (fw.name, fw.distribution) if name}
    for name in sorted(snapshot.packages):
        if _PACKAGES_THAT_MATTER.match(name.lower()) and name not in probed:
            aspect: Aspect = "nccl" if _NCCL_PACKAGES.match(name.lower()) else "package"
            add(ConfigEntry(f"package.{name}", name, snapshot.packages[name].version, aspect))
    return {entry.key: entry for entry in entries}


def _counted(names) -> Optional[str]:
    """"8 x NVIDIA H100 80GB HBM3", or "1 x A, 1 x B" on a mixed machine; None if no name is known."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name or "unknown model"] = counts.get(name or "unknown model", 0) + 1
    return ", ".join(f"{count} x {name}" for name, count in counts.items()) or None


def _build(build) -> str:
    """"cuda 12.8, cuDNN 9.10", "rocm 6.4", "cpu"."""
    parts = [build.variant + (f" {build.cuda_version}" if build.cuda_version and build.variant == "cuda" else "")
             + (f" {build.rocm_version}" if build.rocm_version and build.variant == "rocm" else "")]
    if build.cudnn_version:
        parts.append(f"cuDNN {build.cudnn_version}")
    return ", ".join(parts)
