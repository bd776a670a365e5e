"""The system CUDA toolkit: nvcc and the CUDA libraries the dynamic loader would find.

This is what a user compiles extensions with, not what a framework runs on: torch and
TensorFlow wheels bring their own CUDA (peer tools report nvcc as "the CUDA runtime
version", pytorch#21399). The audit keeps the two apart.
"""

from __future__ import annotations

import os
import re
import shutil

from auditor.facts import CudaToolkitFacts
from auditor.probes import processes
from auditor.probes.base import ProbeAbsent, ProbeContext

NVCC_DEADLINE_S = 10.0  # for nvcc --version and ldconfig -p alike
_LDCONFIG_OUTPUT_LIMIT = 16 << 20  # the ld.so cache lists every library on the machine: often MiBs
# libnccl-net.so is NCCL's network plugin (AWS OFI, InfiniBand SHARP...), which NCCL dlopens by that
# unversioned name for traffic between nodes; without it NCCL falls back to its sockets.
_LIBRARIES = ("libcudart.so", "libcudnn.so", "libcublas.so", "libnccl.so", "libnccl-net.so")


def collect_cuda_toolkit(ctx: ProbeContext) -> CudaToolkitFacts:
    env = ctx.environ
    cuda_home = env.get("CUDA_HOME") or env.get("CUDA_PATH")
    nvcc = shutil.which("nvcc", path=env.get("PATH", os.defpath))
    if not nvcc and cuda_home and os.access(os.path.join(cuda_home, "bin", "nvcc"), os.X_OK):
        nvcc = os.path.join(cuda_home, "bin", "nvcc")
    libraries = _loader_libraries(ctx)
    if not nvcc and not libraries and not cuda_home:
        raise ProbeAbsent("no nvcc on PATH, no CUDA_HOME, and the loader finds no CUDA library")
    facts = CudaToolkitFacts(nvcc_path=nvcc, cuda_home=cuda_home, libraries=libraries,
                             sources={"nvcc_path": "PATH / $CUDA_HOME/bin", "cuda_home": "CUDA_HOME / CUDA_PATH",
                                      "libraries": "LD_LIBRARY_PATH and the ld.so cache (ldconfig -p)"})
    if nvcc:
        output = processes.output_of([nvcc, "--version"], NVCC_DEADLINE_S)
        match = re.search(r"release [\d.]+, V([\d.]+)", output)
        facts.nvcc_version = match.group(1) if match else None
        facts.sources["nvcc_version"] = "nvcc --version"
    return facts


def _loader_libraries(ctx: ProbeContext) -> dict[str, str]:
    """soname -> path for the CUDA libraries the dynamic loader resolves, LD_LIBRARY_PATH first."""
    found: dict[str, str] = {}
    for directory in filter(None, ctx.environ.get("LD_LIBRARY_PATH", "").split(":")):
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            stem = next((lib for lib in _LIBRARIES if name.startswith(lib)), None)
            if stem and stem not in found:
                found[stem] = os.path.join(directory, name)
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig:
        cache = processes.output_of([ldconfig, "-p"], NVCC_DEADLINE_S, _LDCONFIG_OUTPUT_LIMIT)
        for line in cache.splitlines():
            name, _, path = line.strip().partition(" => ")
            # "libnccl.so.2 (libc6,x86-64)", or unversioned: "libnccl-net.so (libc6,x86-64)"
            stem = next((lib for lib in _LIBRARIES if name.startswith((lib + ".", lib + " "))), None)
            if stem and stem not in found:
                found[stem] = path.strip()
    return {stem: path for stem, path in sorted(found.items())}
