"""CPU probe: model, cores really usable, the instruction sets ML code depends on, and the clock.

Linux reads /proc and /sys through the probe root; other platforms ask py-cpuinfo and
psutil (one fact, one place in the snapshot, whatever the back-end).
"""

from __future__ import annotations

import json
import math
import platform
import re
import sys
from dataclasses import dataclass, field
from typing import Optional

from auditor import knowledge
from auditor.facts import CpuFacts
from auditor.probes import cgroup, processes
from auditor.probes.base import ProbeContext
from auditor.probes.fsroot import FsRoot

# ML-relevant features -> the /proc/cpuinfo word that announces each: x86 "flags"; Arm "Features",
# in arm64's words or in 32-bit Arm's (an arm32 kernel, or arm64 answering a 32-bit reader); the
# single-letter extensions of RISC-V's "isa" (V: the ratified vector extension, which vectorised
# kernels target). Kernel names from arch/x86/include/asm/cpufeatures.h, arch/arm64/kernel/cpuinfo.c,
# arch/arm/kernel/setup.c and arch/riscv/kernel/cpufeature.c.
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
ARM32_FEATURES = {"neon": "neon", "fp16": "fphp", "dotprod": "asimddp", "bf16": "asimdbf16", "i8mm": "i8mm"}
_ARM32_ONLY_WORDS = {"half", "thumb"}  # in every 32-bit Features line, in no arm64 one
RISCV_FEATURES = {"rvv": "v"}

# Where Linux announces the CPU's clock, best first: cpufreq's maximum (the turbo ceiling, in kHz),
# the rated clock Intel writes into the model name ("... CPU E5-2686 v4 @ 2.30GHz"), and "cpu MHz", the
# clock each processor ran at when read (all a VM without cpufreq may show).
CPUFREQ_MAX = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
_RATED_CLOCK = re.compile(r"@\s*([0-9]+(?:\.[0-9]+)?)\s*GHz", re.IGNORECASE)

CPUINFO_DEADLINE_S = 10.0
# As the probe children start: without the working directory first on sys.path, where a
# ./cpuinfo folder would stand in for py-cpuinfo.
_CPUINFO = "import sys; del sys.path[0]; from cpuinfo.cpuinfo import main; main()"


@dataclass
class CpuInfo:
    """/proc/cpuinfo, parsed: one dict per processor, and the lines outside them (a POWER machine's
    platform, an old arm kernel's shared Features and CPU part, a board's Hardware)."""

    blocks: list[dict[str, str]] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)

    @property
    def processors(self) -> int:
        return len(self.blocks)

    @property
    def fields(self) -> dict[str, str]:
        """The first processor's fields, over the shared ones."""
        return {**self.shared, **(self.blocks[0] if self.blocks else {})}

    def values(self, key: str) -> list[Optional[str]]:
        """The key's value for each processor (the shared one where a processor has none)."""
        return [block.get(key, self.shared.get(key)) for block in self.blocks or [{}]]

    @property
    def cores(self) -> set[tuple[str, str]]:
        return {(b["physical id"], b["core id"]) for b in self.blocks if "physical id" in b and "core id" in b}

    @property
    def flags(self) -> Optional[set[str]]:
        """The x86 flags or Arm Features every processor announces: what code may use on any core.
        None when no processor announces any."""
        lines = [flags if flags is not None else features
                 for flags, features in zip(self.values("flags"), self.values("Features"))]
        announced = [set(line.split()) for line in lines if line is not None]
        return set.intersection(*announced) if announced else None


def parse_cpuinfo(text: str) -> CpuInfo:
    info = CpuInfo()
    block = None  # the processor being read; a blank line ends it
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if not line.strip():
                block = None
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            block = {}
            info.blocks.append(block)
        (info.shared if block is None else block).setdefault(key, value)
    # Arm kernels before 3.19 list every "processor : N" first and the fields once after the last
    # (arch/arm64/kernel/setup.c then): those fields describe all the processors, not the last one.
    if len(info.blocks) > 1 and all(set(block) == {"processor"} for block in info.blocks[:-1]):
        last = info.blocks[-1]
        info.shared.update({key: value for key, value in last.items() if key != "processor"})
        info.blocks[-1] = {"processor": last["processor"]}
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


def cpu_family(info: CpuInfo) -> Optional[str]:
    """Which kernel wrote this /proc/cpuinfo, by its shape: x86, arm, powerpc, riscv, s390; None when unknown."""
    fields = info.fields
    if fields.get("vendor_id") == "IBM/S390":
        return "s390"
    if "CPU implementer" in fields:
        return "arm"
    if fields.get("isa", "").startswith(("rv32", "rv64")):
        return "riscv"
    if "(pvr " in fields.get("revision", ""):
        return "powerpc"
    if "vendor_id" in fields:
        return "x86"
    return None


def machine_architecture(root: FsRoot, info: Optional[CpuInfo] = None) -> tuple[Optional[str], str]:
    """The machine's architecture as uname -m names it, and where that came from.

    The live root asks the kernel (platform.machine()); any other root is another machine, so its own
    tree answers: /proc/sys/kernel/arch (uname -m, in kernels that have it), else the shape of its
    /proc/cpuinfo. None where neither tells, never this machine's answer.
    """
    if root.is_live:
        return platform.machine() or None, "platform.machine() (uname)"
    arch = (root.read_text("/proc/sys/kernel/arch") or "").strip()
    if arch:
        return arch, "/proc/sys/kernel/arch"
    if info is None:
        info = parse_cpuinfo(root.read_text("/proc/cpuinfo") or "")
    return _architecture_from_cpuinfo(info)


def _architecture_from_cpuinfo(info: CpuInfo) -> tuple[Optional[str], str]:
    fields, family = info.fields, cpu_family(info)
    if family == "x86":
        if "fdiv_bug" not in fields:
            return "x86_64", "/proc/cpuinfo: x86 fields, and no fdiv_bug line (which only a 32-bit kernel prints)"
        # A 32-bit kernel names itself after the CPU family, i486 to i686 (arch/x86/kernel/cpu/bugs.c).
        number = fields.get("cpu family", "")
        if number.isdigit():
            return f"i{min(int(number), 6)}86", "/proc/cpuinfo: fdiv_bug (a 32-bit x86 kernel) and cpu family"
        return None, "unknown: /proc/cpuinfo shows a 32-bit x86 kernel but no cpu family"
    if family == "arm":
        version = fields.get("CPU architecture", "")
        if version in ("8", "AArch64"):  # what every arm64 kernel prints, whatever the core (also to a 32-bit reader)
            return "aarch64", f"/proc/cpuinfo CPU architecture: {version}"
        if not version.isdigit():
            return None, f"unknown: /proc/cpuinfo CPU architecture {version!r} names no architecture"
        # An arm32 kernel's uname -m is "arm" + the ELF platform ending its processor name: "(v7l)" -> armv7l.
        name = fields.get("model name") or fields.get("Processor") or ""
        platform_match = re.search(r"\((v[67][lb])\)$", name)
        if platform_match:
            return f"arm{platform_match.group(1)}", f"/proc/cpuinfo processor name {name!r}"
        return None, f"unknown: /proc/cpuinfo shows a 32-bit Arm kernel (CPU architecture: {version}) but not its name"
    if family == "riscv":
        return f"riscv{fields['isa'][2:4]}", "/proc/cpuinfo isa"
    if family == "s390":  # Linux has built no 31-bit s390 kernel since 4.1
        return "s390x", "/proc/cpuinfo vendor_id IBM/S390"
    if family == "powerpc":
        # Nothing in a PowerPC /proc/cpuinfo gives the kernel's byte order: POWER8 and later run
        # ppc64le distributions and big-endian ppc64 ones alike.
        return None, (f"unknown: /proc/cpuinfo shows a PowerPC CPU ({fields.get('cpu')}) but not whether the kernel "
                      "is ppc64le or ppc64, and the tree has no /proc/sys/kernel/arch")
    return None, "unknown: neither /proc/sys/kernel/arch nor /proc/cpuinfo says"


def collect_cpu(ctx: ProbeContext) -> CpuFacts:
    if platform.system() == "Linux":
        return _collect_linux(ctx.root)
    return _collect_other()


@dataclass
class _Described:
    vendor: Optional[str]
    model: Optional[str]
    features: dict[str, bool]
    sources: dict[str, str]


def _collect_linux(root: FsRoot) -> CpuFacts:
    text = root.read_text("/proc/cpuinfo")
    if text is None:
        raise FileNotFoundError(f"cannot read {root.path('/proc/cpuinfo')}")
    info = parse_cpuinfo(text)
    described = _DESCRIBE.get(cpu_family(info), _describe_unknown)(info, root)
    architecture, architecture_source = machine_architecture(root, info)
    sources = {**described.sources, "architecture": architecture_source}

    logical = info.processors or None
    sources["logical_cpus"] = "/proc/cpuinfo processor entries"
    online = root.read_text("/sys/devices/system/cpu/online")
    if logical is None and online:
        logical = parse_cpu_list(online)
        sources["logical_cpus"] = "/sys/devices/system/cpu/online"

    cores = info.cores
    physical = len(cores) or _sysfs_physical_cores(root) or None
    sources["physical_cores"] = "/proc/cpuinfo physical id + core id" if cores else "/sys/devices/system/cpu/*/topology"

    affinity = None
    status = root.read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            affinity = parse_cpu_list(line.split(":", 1)[1])
            sources["affinity_cpus"] = "/proc/self/status Cpus_allowed_list"

    quota = cgroup.cpu_quota(root)
    if quota:
        sources["cgroup_cpu_quota"] = quota.source
    clock_mhz, sources["clock_mhz"] = _linux_clock_mhz(root, info)

    return CpuFacts(
        vendor=described.vendor,
        model=described.model,
        architecture=architecture,
        logical_cpus=logical,
        physical_cores=physical,
        affinity_cpus=affinity,
        cgroup_cpu_quota=quota.value if quota else None,
        usable_cpus=_usable(logical, affinity, quota.value if quota else None),
        features=described.features,
        clock_mhz=clock_mhz,
        sources={**sources, "usable_cpus": "min(logical, affinity, ceil(cgroup quota))"},
    )


def _linux_clock_mhz(root: FsRoot, info: CpuInfo) -> tuple[Optional[float], str]:
    """The highest clock the CPU announces, in MHz, and where it came from (see CPUFREQ_MAX)."""
    khz = (root.read_text(CPUFREQ_MAX) or "").strip()
    if khz.isdigit() and int(khz) > 0:
        return int(khz) / 1000, f"{CPUFREQ_MAX} (kHz)"
    rated = _RATED_CLOCK.search(info.fields.get("model name") or "")
    if rated and float(rated.group(1)) > 0:
        return float(rated.group(1)) * 1000, "/proc/cpuinfo model name (the rated clock after '@')"
    speeds = [speed for text in info.values("cpu MHz") if (speed := _megahertz(text))]
    if speeds:
        return max(speeds), "/proc/cpuinfo cpu MHz (the fastest processor as read: its clock then, not its maximum)"
    return None, f"unknown: no {CPUFREQ_MAX}, no clock in the model name and no cpu MHz in /proc/cpuinfo"


def _megahertz(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _table_features(table: dict[str, str], announced: Optional[set[str]]) -> dict[str, bool]:
    """Each feature of the table, by the words announced; none at all when nothing was announced."""
    return {} if announced is None else {name: word in announced for name, word in table.items()}


def _device_tree_model(root: FsRoot) -> Optional[str]:
    return (root.read_text("/proc/device-tree/model") or "").strip("\x00\n") or None


def _distinct(names: list[str]) -> str:
    """ "Cortex-A55 + Cortex-A76": each name once, in the order processor 0 onwards first shows it."""
    return " + ".join(dict.fromkeys(names))


def _describe_x86(info: CpuInfo, root: FsRoot) -> _Described:
    fields, flags = info.fields, info.flags
    model = fields.get("model name")
    return _Described(fields.get("vendor_id"), model, _table_features(X86_FEATURES, flags),
                      {"vendor": "/proc/cpuinfo vendor_id",
                       "model": "/proc/cpuinfo model name" if model else "unknown: /proc/cpuinfo has no model name",
                       "features": "unknown: /proc/cpuinfo has no flags" if flags is None else "/proc/cpuinfo flags"})


def _describe_arm(info: CpuInfo, root: FsRoot) -> _Described:
    pairs = list(zip(info.values("CPU implementer"), info.values("CPU part")))
    codes = ", ".join(dict.fromkeys(f"implementer {implementer} part {part}" for implementer, part in pairs))
    vendors = [knowledge.arm_implementer(implementer) for implementer, _ in pairs]
    cores = [knowledge.arm_core(implementer, part) for implementer, part in pairs]
    sources = {}
    if all(vendors):
        vendor = _distinct(vendors)
        sources["vendor"] = "/proc/cpuinfo CPU implementer (knowledge: arm-cores)"
    else:
        vendor = None
        sources["vendor"] = f"unknown: /proc/cpuinfo CPU {codes}, an implementer not in knowledge arm-cores"
    if all(cores):
        model = _distinct(cores)
        sources["model"] = "/proc/cpuinfo CPU implementer + CPU part (knowledge: arm-cores)"
    else:
        # An unknown part is no core name; the kernel's or the board's own name, if any, stands in.
        unknown = f"/proc/cpuinfo CPU {codes}, a core not in knowledge arm-cores"
        model, model_source = info.fields.get("model name"), "/proc/cpuinfo model name"
        if model is None:
            model, model_source = _device_tree_model(root), "/proc/device-tree/model"
        sources["model"] = f"{model_source} ({unknown})" if model else f"unknown: {unknown}"
    flags = info.flags
    table = ARM32_FEATURES if flags and flags & _ARM32_ONLY_WORDS else ARM_FEATURES
    sources["features"] = "/proc/cpuinfo Features" if flags is not None else "unknown: /proc/cpuinfo has no Features"
    return _Described(vendor, model, _table_features(table, flags), sources)


def _describe_powerpc(info: CpuInfo, root: FsRoot) -> _Described:
    cpu = info.fields.get("cpu", "")
    model = re.sub(r"\s*\(.*?\)", "", cpu.split(",")[0]).strip() or None  # "POWER8NVL (raw), altivec supported"
    is_power = bool(model and re.match(r"POWER\d", model))
    # The kernel appends "altivec supported" when it can use AltiVec; its absence proves nothing (a
    # kernel built without it), and nothing in /proc/cpuinfo speaks of VSX.
    altivec = "altivec supported" in cpu
    return _Described("IBM" if is_power else None, model, {"altivec": True} if altivec else {},
                      {"vendor": "/proc/cpuinfo cpu (IBM's POWER line)" if is_power else "unknown: /proc/cpuinfo cpu",
                       "model": "/proc/cpuinfo cpu",
                       "features": "/proc/cpuinfo cpu" if altivec else "unknown: /proc/cpuinfo cpu names no features"})


def _describe_riscv(info: CpuInfo, root: FsRoot) -> _Described:
    fields = info.fields
    model, model_source = fields.get("uarch"), "/proc/cpuinfo uarch"
    if model is None:
        model, model_source = fields.get("model name"), "/proc/cpuinfo model name"
    if model is None:
        model, model_source = _device_tree_model(root), "/proc/device-tree/model"
    # "rv64imafdcv_zicbom_...": the letters before the first underscore are the single-letter extensions.
    letters = set.intersection(*(set(isa[4:].split("_")[0]) for isa in info.values("isa") if isa))
    mvendorid = fields.get("mvendorid")
    return _Described(None, model, _table_features(RISCV_FEATURES, letters),
                      {"vendor": f"unknown: mvendorid {mvendorid}, no sourced table of RISC-V vendor ids"
                                 if mvendorid else "unknown: /proc/cpuinfo has no mvendorid",
                       "model": model_source if model else "unknown: /proc/cpuinfo has no uarch or model name",
                       "features": "/proc/cpuinfo isa single-letter extensions"})


def _describe_s390(info: CpuInfo, root: FsRoot) -> _Described:
    return _Described("IBM", None, {}, {"vendor": "/proc/cpuinfo vendor_id IBM/S390",
                                        "model": "unknown: not read from an s390 /proc/cpuinfo",
                                        "features": "unknown: not read from an s390 /proc/cpuinfo"})


def _describe_unknown(info: CpuInfo, root: FsRoot) -> _Described:
    model = info.fields.get("model name")
    return _Described(None, model, {},
                      {"vendor": "unknown: /proc/cpuinfo of an unrecognised kind",
                       "model": "/proc/cpuinfo model name" if model else "unknown: /proc/cpuinfo has no model name",
                       "features": "unknown: /proc/cpuinfo of an unrecognised kind"})


_DESCRIBE = {"x86": _describe_x86, "arm": _describe_arm, "powerpc": _describe_powerpc, "riscv": _describe_riscv,
             "s390": _describe_s390}


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
    clock_mhz, clock_source = _cpuinfo_clock_mhz(info)
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
        clock_mhz=clock_mhz,
        sources={"vendor": "py-cpuinfo", "model": "py-cpuinfo", "features": "py-cpuinfo flags", "clock_mhz": clock_source,
                 "logical_cpus": "psutil.cpu_count()", "physical_cores": "psutil.cpu_count(logical=False)",
                 "affinity_cpus": "psutil.Process().cpu_affinity()", "architecture": "platform.machine()"},
    )


def _cpuinfo_clock_mhz(info: dict) -> tuple[Optional[float], str]:
    """py-cpuinfo's clock: the higher of the advertised one (the brand string's) and the one it measured,
    each given as [whole hertz, fraction]."""
    clocks = {}
    for key in ("hz_advertised", "hz_actual"):
        value = info.get(key)
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], int) and value[0] > 0:
            clocks[key] = value[0] / 1e6
    if not clocks:
        return None, "unknown: py-cpuinfo gave no clock"
    key = max(clocks, key=clocks.get)
    return clocks[key], f"py-cpuinfo {key}"
