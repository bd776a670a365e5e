"""cgroup v1 and v2 limits, read the way the kernel enforces them.

Limits are enforced top-down, so the effective limit is the smallest one on the path from
this process's cgroup to the root of the hierarchy. Inside a container with a cgroup
namespace the process sees itself at "/", and the mount root already is its own cgroup.
Sentinels for "no limit": v2 writes ``max``; v1 writes -1 (CPU) or a page-aligned
INT64_MAX (memory). Sources: kernel docs (cgroup-v2.rst, cgroup-v1/memory.rst),
loky's cpu_count (joblib/loky ``backend/context.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from auditor.probes.fsroot import FsRoot

CGROUP_MOUNT = "/sys/fs/cgroup"
# v1 reports "unlimited" as the largest page-aligned signed 64-bit value; anything this
# large is not a limit a machine can have.
_V1_UNLIMITED_FLOOR = 1 << 62


@dataclass(frozen=True)
class CgroupLimit:
    value: float
    source: str


LimitReader = Callable[[FsRoot, str], Optional[CgroupLimit]]


def _memberships(root: FsRoot) -> list[tuple[list[str], str]]:
    """(controllers, path) per line of /proc/self/cgroup; v2 is ([], path)."""
    entries = []
    for line in (root.read_text("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            entries.append(([c for c in parts[1].split(",") if c], parts[2]))
    return entries


def _candidate_dirs(root: FsRoot, mount: str, path: str) -> list[str]:
    """The cgroup's own directory and each ancestor up to the mount root that exist."""
    parts = [p for p in path.split("/") if p]
    dirs = []
    for depth in range(len(parts), -1, -1):
        candidate = "/".join([mount, *parts[:depth]])
        if root.path(candidate).is_dir():
            dirs.append(candidate)
    return dirs


def _v2_mount(root: FsRoot) -> str:
    """/sys/fs/cgroup on unified hosts; /sys/fs/cgroup/unified on hybrid (v1 + v2) hosts."""
    hybrid = f"{CGROUP_MOUNT}/unified"
    return hybrid if root.exists(f"{hybrid}/cgroup.controllers") else CGROUP_MOUNT


def _v1_mount(root: FsRoot, controller: str) -> Optional[str]:
    for name in root.listdir(CGROUP_MOUNT):
        if controller in name.split(","):
            return f"{CGROUP_MOUNT}/{name}"
    return None


def _smallest_limit(root: FsRoot, controller: str, read_v2: LimitReader, read_v1: LimitReader) -> Optional[CgroupLimit]:
    """Walk every hierarchy this process belongs to and keep the smallest limit found."""
    limits: list[CgroupLimit] = []
    for controllers, path in _memberships(root):
        if not controllers:
            mount, read = _v2_mount(root), read_v2
        elif controller in controllers:
            mount, read = _v1_mount(root, controller), read_v1
        else:
            continue
        for directory in _candidate_dirs(root, mount, path) if mount else []:
            limit = read(root, directory)
            if limit:
                limits.append(limit)
    return min(limits, key=lambda limit: limit.value) if limits else None


def _cpu_max(root: FsRoot, directory: str) -> Optional[CgroupLimit]:
    fields = (root.read_text(f"{directory}/cpu.max") or "").split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return CgroupLimit(int(fields[0]) / period, f"{directory}/cpu.max")


def _cfs_quota(root: FsRoot, directory: str) -> Optional[CgroupLimit]:
    quota = root.read_text(f"{directory}/cpu.cfs_quota_us")
    period = root.read_text(f"{directory}/cpu.cfs_period_us")
    if not quota or not period or int(quota) <= 0:
        return None
    return CgroupLimit(int(quota) / int(period), f"{directory}/cpu.cfs_quota_us")


def _memory_max(root: FsRoot, directory: str) -> Optional[CgroupLimit]:
    text = (root.read_text(f"{directory}/memory.max") or "").strip()
    return CgroupLimit(int(text), f"{directory}/memory.max") if text and text != "max" else None


def _memory_limit_in_bytes(root: FsRoot, directory: str) -> Optional[CgroupLimit]:
    text = (root.read_text(f"{directory}/memory.limit_in_bytes") or "").strip()
    if not text or int(text) >= _V1_UNLIMITED_FLOOR:
        return None
    return CgroupLimit(int(text), f"{directory}/memory.limit_in_bytes")


def cpu_quota(root: FsRoot) -> Optional[CgroupLimit]:
    """The CPU bandwidth limit in CPUs (quota / period), or None when there is none."""
    return _smallest_limit(root, "cpu", _cpu_max, _cfs_quota)


def memory_limit(root: FsRoot) -> Optional[CgroupLimit]:
    """The memory limit in bytes, or None when there is none."""
    return _smallest_limit(root, "memory", _memory_max, _memory_limit_in_bytes)
