"""Memory probe: RAM, the cgroup limit that really applies, swap and /dev/shm.

psutil reports the host's /proc/meminfo inside containers (psutil #1011), so on Linux
the cgroup limit is read alongside and the smaller of the two is what is usable.
"""

from __future__ import annotations

import os
import platform
from typing import Optional

from auditor.facts import MemoryFacts
from auditor.probes import cgroup
from auditor.probes.base import ProbeContext
from auditor.probes.fsroot import FsRoot

_SIZE_SUFFIX = {"k": 1024, "m": 1024**2, "g": 1024**3}


def collect_memory(ctx: ProbeContext) -> MemoryFacts:
    if platform.system() == "Linux":
        return _collect_linux(ctx.root)
    import psutil

    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    return MemoryFacts(
        total_bytes=vm.total, available_bytes=vm.available, cgroup_limit_bytes=None, usable_bytes=vm.total,
        swap_total_bytes=swap.total, swap_free_bytes=swap.free, shm_bytes=None,
        sources={name: "psutil" for name in ("total_bytes", "available_bytes", "usable_bytes",
                                             "swap_total_bytes", "swap_free_bytes")},
    )


def _collect_linux(root: FsRoot) -> MemoryFacts:
    text = root.read_text("/proc/meminfo")
    if text is None:
        raise FileNotFoundError(f"cannot read {root.path('/proc/meminfo')}")
    meminfo = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            meminfo[key.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    sources = {name: "/proc/meminfo" for name in ("total_bytes", "available_bytes", "swap_total_bytes", "swap_free_bytes")}
    total = meminfo.get("MemTotal")
    limit = cgroup.memory_limit(root)
    if limit:
        sources["cgroup_limit_bytes"] = limit.source
    usable = min(v for v in (total, limit.value if limit else None) if v is not None) if total or limit else None
    sources["usable_bytes"] = "min(MemTotal, cgroup limit)"
    shm, shm_source = _shm_size(root)
    if shm_source:
        sources["shm_bytes"] = shm_source
    return MemoryFacts(
        total_bytes=total,
        available_bytes=meminfo.get("MemAvailable"),
        cgroup_limit_bytes=int(limit.value) if limit else None,
        usable_bytes=int(usable) if usable is not None else None,
        swap_total_bytes=meminfo.get("SwapTotal"),
        swap_free_bytes=meminfo.get("SwapFree"),
        shm_bytes=shm,
        sources=sources,
    )


def _shm_size(root: FsRoot) -> tuple[Optional[int], Optional[str]]:
    """/dev/shm's size: the tmpfs size= option when the mount table names one, else statvfs."""
    mounts = root.read_text("/proc/self/mounts") or ""
    found = False
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "/dev/shm":
            found = True
            for option in fields[3].split(","):
                # size=50% is relative to RAM: statvfs below gives the resolved figure.
                if option.startswith("size=") and not option.endswith("%"):
                    return _parse_size(option[5:]), "/proc/self/mounts size= option"
    if found or root.path("/dev/shm").is_dir():
        stat = os.statvfs(root.path("/dev/shm"))
        return stat.f_frsize * stat.f_blocks, "statvfs(/dev/shm)"
    return None, None


def _parse_size(text: str) -> int:
    suffix = text[-1:].lower()
    if suffix in _SIZE_SUFFIX:
        return int(text[:-1]) * _SIZE_SUFFIX[suffix]
    return int(text)
