"""CPU probe: model, cores really usable, and the instruction sets ML code depends on.

Linux reads /proc and /sys through the probe root; other platforms ask py-cpuinfo and
psutil (one fact, one place in the snapshot, whatever the back-end).
"""

from __future__ import annotations

import json
import math
import platform
import sys
from dataclasses import dataclass, field
from typing import Optional

from auditor.facts import CpuFacts
from auditor.probes import cgroup, processes
from auditor.probes.base import ProbeContext
from auditor.probes.fsroot import FsRoot

# ML-relevant features -> the /proc/cpuinfo flag that announces each (x86 "flags", Arm
# "Features"). Kernel names from arch/x86/include/asm/cpufeatures.h and
# arch/arm64/kernel/cpuinfo.c.
X86_FEATURES = {
    "sse4.2": "sse4_2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512vl": "avx512vl", "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16", "avx512_fp16": "avx512_fp16", "avx_vnni": "avx_vnni",
    "amx_tile": "amx_tile", "amx_bf16": "amx_bf16", "amx_int8": "amx_int8",
}
ARM_FEATURES = {
    "neon": "asimd", "fp16": "fphp", "dotprod": "asimddp", "sve": "sve", "sve2": "sve2",
    "bf16": "bf16", "i8mm": "i8mm", "sme": "sme",
}
# "CPU implementer" codes, from the Arm ARM's MIDR_EL1 table.
ARM_IMPLEMENTERS = {"0x41": "ARM", "0x42": "Broadcom", "0x48": "HiSilicon", "0x4e": "NVIDIA",
                    "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere"}

CPUINFO_DEADLINE_S = 10.0
# As the probe children start: without the working directory first on sys.path, where a
# ./cpuinfo folder would stand in for py-cpuinfo.
_CPUINFO = "import sys; del sys.path[0]; from cpuinfo.cpuinfo import main; main()"


@dataclass
class CpuInfo:
    """/proc/cpuinfo, parsed: the first processor's fields and the processor count."""

    fields: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    processors: int = 0
    cores: set[tuple[str, str]] = field(default_factory=set)  # (physical id, core id)


def parse_cpuinfo(text: str) -> CpuInfo:
    info = CpuInfo()
    physical_id = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            info.processors += 1
        elif key == "physical id":
            physical_id = value
        elif key == "core id" and physical_id is not None:
            info.cores.add((physical_id, value))
        if info.processors <= 1:
            info.fields.setdefault(key, value)
    info.flags = set((info.fields.get("flags") or info.fields.get("Features") or "").split())
    return info


def parse_cpu_list(text: str) -> int:
    """Count the CPUs in a kernel cpu list such as '0-3,8,10-11'."""
    count = 0
    for part in text.strip().split(","):
        if "-" in part:
            low, high = part.split("-")
            count += int(high) - int(low) + 1
        elif part:
            count += 1
    return count


def collect_cpu(ctx: ProbeContext) -> CpuFacts:
    if platform.system() == "Linux":
        return _collect_linux(ctx.root)
    return _collect_other()


def _collect_linux(root: FsRoot) -> CpuFacts:
    text = root.read_text("/proc/cpuinfo")
    if text is None:
        raise FileNotFoundError(f"cannot read {root.path('/proc/cpuinfo')}")
    info = parse_cpuinfo(text)
    sources = {}
    is_arm = "CPU implementer" in info.fields
    features_table = ARM_FEATURES if is_arm else X86_FEATURES
    if is_arm:
        vendor = ARM_IMPLEMENTERS.get(info.fields["CPU implementer"].lower(), info.fields["CPU implementer"])
        model = info.fields.get("model name") or (root.read_text("/proc/device-tree/model") or "").strip("\x00\n") or None
    else:
        vendor = info.fields.get("vendor_id")
        model = info.fields.get("model name")
    sources.update(vendor="/proc/cpuinfo", model="/proc/cpuinfo", features="/proc/cpuinfo flags")

    logical = info.processors or None
    sources["logical_cpus"] = "/proc/cpuinfo processor entries"
    online = root.read_text("/sys/devices/system/cpu/online")
    if logical is None and online:
        logical = parse_cpu_list(online)
        sources["logical_cpus"] = "/sys/devices/system/cpu/online"

    physical = len(info.cores) or _sysfs_physical_cores(root) or None
    sources["physical_cores"] = "/proc/cpuinfo physical id + core id" if info.cores else "/sys/devices/system/cpu/*/topology"

    affinity = None
    status = root.read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            affinity = parse_cpu_list(line.split(":", 1)[1])
            sources["affinity_cpus"] = "/proc/self/status Cpus_allowed_list"

    quota = cgroup.cpu_quota(root)
    if quota:
        sources["cgroup_cpu_quota"] = quota.source

    return CpuFacts(
        vendor=vendor,
        model=model,
        architecture=platform.machine(),
        logical_cpus=logical,
        physical_cores=physical,
        affinity_cpus=affinity,
        cgroup_cpu_quota=quota.value if quota else None,
        usable_cpus=_usable(logical, affinity, quota.value if quota else None),
        features={name: flag in info.flags for name, flag in features_table.items()},
        sources={**sources, "architecture": "platform.machine()",
                 "usable_cpus": "min(logical, affinity, ceil(cgroup quota))"},
    )


def _sysfs_physical_cores(root: FsRoot) -> int:
    cores = set()
    for name in root.listdir("/sys/devices/system/cpu"):
        if name.startswith("cpu") and name[3:].isdigit():
            topology = f"/sys/devices/system/cpu/{name}/topology"
            package = root.read_text(f"{topology}/physical_package_id")
            core = root.read_text(f"{topology}/core_id")
            if package is not None and core is not None:
                cores.add((package.strip(), core.strip()))
    return len(cores)


def _cpuinfo() -> dict:
    """py-cpuinfo's answer. It runs CPUID in a subprocess of its own (about a second, so only
    where the platform offers no /proc to read), which get_cpu_info() waits for without a
    deadline: that subprocess, py-cpuinfo's own ``--json`` entry point, is run here instead,
    with one, bounded like every helper's."""
    output = processes.output_of([sys.executable, "-c", _CPUINFO, "--json"], CPUINFO_DEADLINE_S, name="py-cpuinfo")
    try:
        info = json.loads(output)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise ValueError(f"py-cpuinfo gave no CPU facts: {output.strip()[:80]!r}")
    return info


def _usable(logical: Optional[int], affinity: Optional[int], quota: Optional[float]) -> Optional[int]:
    candidates = [n for n in (logical, affinity) if n]
    if quota:
        candidates.append(max(1, math.ceil(quota)))
    return min(candidates) if candidates else None


def _collect_other() -> CpuFacts:
    import psutil

    info = _cpuinfo()
    flags = set(info.get("flags", []))
    is_arm = platform.machine().lower() in ("arm64", "aarch64")
    table = ARM_FEATURES if is_arm else X86_FEATURES
    logical = psutil.cpu_count(logical=True)
    affinity = None
    if hasattr(psutil.Process, "cpu_affinity"):
        affinity = len(psutil.Process().cpu_affinity())
    # Apple silicon always has NEON; py-cpuinfo reports no flags there.
    features = {name: (flag in flags) or (name == "neon" and is_arm) for name, flag in table.items()}
    return CpuFacts(
        vendor=info.get("vendor_id_raw"),
        model=info.get("brand_raw"),
        architecture=platform.machine(),
        logical_cpus=logical,
        physical_cores=psutil.cpu_count(logical=False),
        affinity_cpus=affinity,
        cgroup_cpu_quota=None,
        usable_cpus=_usable(logical, affinity, None),
        features=features,
        sources={"vendor": "py-cpuinfo", "model": "py-cpuinfo", "features": "py-cpuinfo flags",
                 "logical_cpus": "psutil.cpu_count()", "physical_cores": "psutil.cpu_count(logical=False)",
                 "affinity_cpus": "psutil.Process().cpu_affinity()", "architecture": "platform.machine()"},
    )
