"""Rules shared by the checks and the recommendation, written once.

- Whether a build's compiled GPU architectures can run on a GPU (NVIDIA's rules: an sm_XY
  cubin runs on compute capability X.Z for Z >= Y of the same major only; PTX compute_XY can
  be JIT-compiled for any newer GPU. Sources: CUDA C++ Programming Guide, "Binary
  Compatibility" and "PTX Compatibility"; reference notes §1.4, §7.2).
- Which export tool release fits the installed torch (the framework builds that fit this machine
  are searched in auditor/builds.py).
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from packaging.version import InvalidVersion, Version

from auditor import knowledge
from auditor.facts import Snapshot

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
    """Whether a driver runs code built with this CUDA: at or above its family's minor-version floor
    from CUDA 11 on, at or above the toolkit's own driver before (CUDA 10 had no such compatibility).
    ``cuda`` may be a bare major ("12") for the family."""
    floor = (knowledge.family_floor(int(cuda), os) if cuda.isdigit() else knowledge.driver_floor_for(cuda, os))
    driver_version, floor_version = version(driver), version(floor.driver) if floor else None
    return bool(driver_version and floor_version and driver_version >= floor_version)


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
