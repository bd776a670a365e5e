"""AMD GPUs for ROCm: the KFD compute interface, render nodes, topology, ROCm version.

KFD's topology (/sys/class/kfd/kfd/topology/nodes/N/properties) lists every compute agent
with its gfx target, which is what ROCm builds are compiled for; CPU agents have no SIMDs.
Source: ROCm/ROCT-Thunk-Interface src/topology.c (property names), checked 2026-11-24.
"""

from __future__ import annotations

from auditor.facts import AmdFacts, AmdGpu
from auditor.probes.base import ProbeAbsent, ProbeContext
from auditor.probes.fsroot import FsRoot

TOPOLOGY = "/sys/class/kfd/kfd/topology/nodes"
ROCM_VERSION_FILES = ("/opt/rocm/.info/version", "/opt/rocm/.info/version-dev")


def gfx_target(version: int) -> str:
    """KFD's gfx_target_version 90402 -> gfx942 (major, minor and stepping; the last two in hex)."""
    major, minor, stepping = version // 10000, version // 100 % 100, version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def _properties(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def collect_amd(ctx: ProbeContext) -> AmdFacts:
    root = ctx.root
    kfd = root.exists("/dev/kfd")
    render_nodes = [f"/dev/dri/{name}" for name in root.listdir("/dev/dri") if name.startswith("renderD")]
    gpus = [gpu for node in root.listdir(TOPOLOGY) if node.isdigit() and (gpu := _gpu(root, int(node)))]
    if not kfd and not gpus:
        raise ProbeAbsent("no AMD ROCm device: /dev/kfd and the KFD topology are absent")
    rocm_version = next((text.strip() for f in ROCM_VERSION_FILES if (text := root.read_text(f))), None)
    return AmdFacts(kfd_present=kfd, render_nodes=render_nodes, rocm_version=rocm_version, gpus=gpus,
                    sources={"kfd_present": "/dev/kfd", "render_nodes": "/dev/dri/renderD*",
                             "gpus": f"{TOPOLOGY}/*/properties", "rocm_version": "/opt/rocm/.info/version"})


def _gpu(root: FsRoot, node: int) -> AmdGpu | None:
    base = f"{TOPOLOGY}/{node}"
    props = _properties(root.read_text(f"{base}/properties") or "")
    if not props.get("simd_count"):
        return None  # a CPU agent
    vram = sum(_properties(root.read_text(f"{base}/mem_banks/{bank}/properties") or "").get("size_in_bytes", 0)
               for bank in root.listdir(f"{base}/mem_banks"))
    minor = props.get("drm_render_minor")
    location = props.get("location_id")  # PCI bus/device/function packed as (bus << 8) | devfn
    return AmdGpu(
        node=node,
        gfx_target=gfx_target(props["gfx_target_version"]) if props.get("gfx_target_version") else None,
        name=(root.read_text(f"{base}/name") or "").strip() or None,
        vram_bytes=vram or None,
        compute_units=props["simd_count"] // props["simd_per_cu"] if props.get("simd_per_cu") else None,
        render_node=f"/dev/dri/renderD{minor}" if minor else None,
        pci_address=(f"{props.get('domain', 0):04x}:{location >> 8:02x}:{(location & 0xff) >> 3:02x}.{location & 7}"
                     if location else None),
    )
