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
# kfd_topology.c names a node after the lower-cased amdgpu_asic_name[] entry; every chip found by IP
# discovery (MI300, RDNA3...) gets this placeholder, which names no GPU.
PLACEHOLDER_NAMES = ("", "ip discovery")


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
    gpus = _gpus(root)
    if not kfd and not gpus:
        raise ProbeAbsent("no AMD ROCm device: /dev/kfd and the KFD topology are absent")
    rocm_version = next((text.strip() for f in ROCM_VERSION_FILES if (text := root.read_text(f))), None)
    return AmdFacts(kfd_present=kfd, render_nodes=render_nodes, rocm_version=rocm_version, gpus=gpus,
                    sources={"kfd_present": "/dev/kfd", "render_nodes": "/dev/dri/renderD*",
                             "gpus": f"{TOPOLOGY}/*/properties", "rocm_version": "/opt/rocm/.info/version"})


def _gpus(root: FsRoot) -> list[AmdGpu]:
    nodes = sorted(int(node) for node in root.listdir(TOPOLOGY) if node.isdigit())
    props = {node: _properties(root.read_text(f"{TOPOLOGY}/{node}/properties") or "") for node in nodes}
    # A compute-partitioned GPU (MI300 CPX, DPX...) shows one KFD node per partition, and the kernel ORs
    # the partition's node id into location_id's function bits when a device has several nodes
    # (linux kfd_topology.c: `location_id = pci_dev_id(pdev); if (num_nodes > 1) location_id |= node_id`).
    # So the nodes sharing domain, bus, device and unique_id are one device's partitions, in KFD order
    # (ROCm's k8s-device-plugin groups them by domain, bus and device), and partition 0's location_id
    # is the device's own. A node alone keeps its function, whatever it is.
    devices: dict[object, list[int]] = {}
    for node in nodes:
        if props[node].get("simd_count"):  # CPU agents have none
            devices.setdefault(_device_key(node, props[node]), []).append(node)
    gpus = []
    for members in devices.values():
        location = min(props[node].get("location_id") or 0 for node in members)
        gpus += [_gpu(root, node, props[node], location, index if len(members) > 1 else None)
                 for index, node in enumerate(members)]
    return sorted(gpus, key=lambda gpu: gpu.node)


def _device_key(node: int, props: dict[str, int]) -> object:
    location = props.get("location_id")
    if not location:
        return node  # no PCI location: a device of its own
    return props.get("domain"), (location & 0xFFFF) >> 3, props.get("unique_id")


def _gpu(root: FsRoot, node: int, props: dict[str, int], location: int, partition: int | None) -> AmdGpu:
    base = f"{TOPOLOGY}/{node}"
    vram = sum(_properties(root.read_text(f"{base}/mem_banks/{bank}/properties") or "").get("size_in_bytes", 0)
               for bank in root.listdir(f"{base}/mem_banks"))
    name = (root.read_text(f"{base}/name") or "").strip()
    minor, domain = props.get("drm_render_minor"), props.get("domain")
    return AmdGpu(
        node=node,
        gfx_target=gfx_target(props["gfx_target_version"]) if props.get("gfx_target_version") else None,
        name=None if name in PLACEHOLDER_NAMES else name,
        vram_bytes=vram or None,
        compute_units=props["simd_count"] // props["simd_per_cu"] if props.get("simd_per_cu") else None,
        render_node=f"/dev/dri/renderD{minor}" if minor else None,
        # location_id is pci_dev_id(): (bus << 8) | (device << 3) | function. Kernels before the domain
        # property leave the domain unknown, and so the address.
        pci_address=(f"{domain:04x}:{location >> 8 & 0xff:02x}:{location >> 3 & 0x1f:02x}.{location & 7}"
                     if location and domain is not None else None),
        partition=partition,
    )
