"""The NVIDIA kernel driver as the filesystem shows it: loaded module and device nodes.

Cross-checked against NVML by the GPU checks: a driver that is loaded while /dev/nvidia*
is missing is the signature of a container started without GPU access.
"""

from __future__ import annotations

import re

from auditor.facts import NvidiaKernelFacts
from auditor.probes.base import ProbeAbsent, ProbeContext

# "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15  Thu Jan ..." (open and
# proprietary modules alike).
_VERSION = re.compile(r"Kernel Module(?: for \w+)?\s+(\d+\.\d+(?:\.\d+)?)")


def collect_nvidia_kernel(ctx: ProbeContext) -> NvidiaKernelFacts:
    root = ctx.root
    text = root.read_text("/proc/driver/nvidia/version")
    nodes = [f"/dev/{name}" for name in root.listdir("/dev") if name.startswith("nvidia")]
    if text is None and not nodes:
        raise ProbeAbsent("no NVIDIA kernel driver: /proc/driver/nvidia/version and /dev/nvidia* are absent")
    match = _VERSION.search(text or "")
    return NvidiaKernelFacts(
        driver_version=match.group(1) if match else None,
        device_nodes=nodes,
        sources={"driver_version": "/proc/driver/nvidia/version", "device_nodes": "/dev/nvidia*"},
    )
