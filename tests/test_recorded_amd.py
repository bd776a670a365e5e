"""The AMD probe on real KFD topology trees recorded by ROCm/k8s-device-plugin (tests/recorded/README.md).

Every expected value is read here from the raw files, apart from the probe's code, and the
partitioned machines are also checked against addresses and counts written out by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.checks import run_checks
from auditor.facts import AmdGpu
from auditor.probes.amd import collect_amd
from auditor.probes.base import ProbeContext
from auditor.probes.fsroot import FsRoot
from conftest import quick_snapshot
from machines import linux_machine

RECORDED = Path(__file__).parent / "recorded" / "kfd"
NODES = "sys/class/kfd/kfd/topology/nodes"
TREES = ["topo-mi210-xgmi-pcie", "topo-mi300-cpx", "topology-parsing-mi308", "topology-parsing"]


def read_props(path: Path) -> dict[str, int]:
    return {key: int(value) for key, value in (line.split() for line in path.read_text().splitlines())}


def raw_gpus(tree: str) -> dict[int, dict]:
    """GPU nodes (simd_count > 0) of a recorded tree, by KFD node number, straight from its files."""
    gpus = {}
    for directory in (RECORDED / tree / NODES).iterdir():
        props = read_props(directory / "properties")
        if props["simd_count"] > 0:
            name = directory / "name"
            banks = sorted((directory / "mem_banks").glob("*/properties"))
            gpus[int(directory.name)] = {"props": props, "name": name.read_text().strip() if name.exists() else None,
                                         "banks": [read_props(bank)["size_in_bytes"] for bank in banks]}
    return dict(sorted(gpus.items()))


def physical_devices(gpus: dict[int, dict]) -> dict[tuple, list[int]]:
    """KFD nodes grouped by PCI domain, bus, device (location_id bits 15:3) and unique_id."""
    devices: dict[tuple, list[int]] = {}
    for node, gpu in gpus.items():
        p = gpu["props"]
        devices.setdefault((p.get("domain"), p["location_id"] // 8, p.get("unique_id")), []).append(node)
    return devices


def expected_gpus(tree: str) -> list[AmdGpu]:
    gpus = raw_gpus(tree)
    expected = {}
    for (domain, slot, _), nodes in physical_devices(gpus).items():
        function = min(gpus[node]["props"]["location_id"] % 8 for node in nodes)  # partition 0's: node id 0
        bus, device = slot // 32, slot % 32
        for index, node in enumerate(nodes):
            p, version = gpus[node]["props"], gpus[node]["props"].get("gfx_target_version")
            expected[node] = AmdGpu(
                node=node,
                gfx_target="gfx%d%x%x" % (version // 10000, version % 10000 // 100, version % 100) if version else None,
                name=gpus[node]["name"] if gpus[node]["name"] not in (None, "", "ip discovery") else None,
                vram_bytes=sum(gpus[node]["banks"]) or None,
                compute_units=p["simd_count"] // p["simd_per_cu"],
                render_node=f"/dev/dri/renderD{p['drm_render_minor']}",
                pci_address=f"{domain:04x}:{bus:02x}:{device:02x}.{function}" if domain is not None else None,
                partition=index if len(nodes) > 1 else None)
    return [expected[node] for node in sorted(expected)]


def probe(tree: str):
    return collect_amd(ProbeContext(FsRoot(RECORDED / tree), {}))


@pytest.mark.parametrize("tree", TREES)
def test_every_field_of_every_gpu_matches_the_raw_files(tree):
    amd = probe(tree)
    assert amd.gpus == expected_gpus(tree)
    assert not amd.kfd_present and amd.rocm_version is None  # the captures hold the topology only


def test_mi210_xgmi_node_is_eight_whole_gfx90a_gpus():
    gpus = probe("topo-mi210-xgmi-pcie").gpus
    assert len(gpus) == 8
    assert {(g.gfx_target, g.compute_units, g.partition) for g in gpus} == {("gfx90a", 104, None)}
    assert sorted(g.pci_address for g in gpus) == [f"0000:{bus}:00.0" for bus in
                                                   ("03", "26", "43", "63", "83", "a3", "c3", "e3")]
    assert {(g.name, g.vram_bytes) for g in gpus} == {(None, None)}  # the capture has no name or mem_banks files


def test_mi300x_cpx_partitions_report_their_device_address_and_index():
    gpus = probe("topo-mi300-cpx").gpus
    by_address: dict[str, list[AmdGpu]] = {}
    for gpu in gpus:
        by_address.setdefault(gpu.pci_address, []).append(gpu)
    buses = ("05", "27", "47", "65", "85", "a7", "c7", "e5")
    assert list(by_address) == [f"0000:{bus}:00.0" for bus in buses]
    # CPX: eight partitions of 38 CUs each (304 / 8). The capture has no node for the last GPU's eighth:
    # render minors ran out at renderD190 (ROCm SMI 7.3.0's notes: CPX meets the DRM limit of 64 nodes).
    assert [[g.partition for g in members] for members in by_address.values()] == [list(range(8))] * 7 + [list(range(7))]
    assert {(g.gfx_target, g.compute_units) for g in gpus} == {("gfx942", 38)}
    raw = raw_gpus("topo-mi300-cpx")
    for members in by_address.values():
        assert len({raw[g.node]["props"]["unique_id"] for g in members}) == 1
        # The kernel ORed each partition's node id into the function bits the probe no longer reports.
        assert [raw[g.node]["props"]["location_id"] % 8 for g in members] == [g.partition for g in members]


def test_mi308x_cpx_partitions_on_two_pci_domains():
    gpus = probe("topology-parsing-mi308").gpus
    addresses = sorted({g.pci_address for g in gpus})
    assert addresses == [f"0000:{bus}:00.0" for bus in ("0a", "80", "a4", "c8")] + \
                        [f"0001:{bus}:00.0" for bus in ("0b", "81", "a5", "c9")]
    for address in addresses:
        assert [g.partition for g in gpus if g.pci_address == address] == [0, 1, 2, 3]
    assert {(g.gfx_target, g.compute_units, g.name) for g in gpus} == {("gfx942", 20, None)}  # the index stores no name file
    # The search index stores the GPU mem_banks file of nodes 25 and 30 only (tests/recorded/README.md),
    # so only those two partitions report VRAM; the other 30 have no mem_banks file in the tree.
    assert {g.node: g.vram_bytes for g in gpus if g.vram_bytes is not None} == {25: 51522830336, 30: 48 * 1024**3}
    assert sum(g.vram_bytes is None for g in gpus) == 30


def test_a_2018_kernel_leaves_gfx_target_and_address_unknown():
    """Vega 10 (device 0x6860) on a kernel without gfx_target_version or domain; upstream copied node 1
    to node 2 by hand with another render minor and unique_id, so they stay two whole GPUs. The search index
    stores node 1's mem_banks file but not node 2's, so node 2 reports no VRAM."""
    gpus = probe("topology-parsing").gpus
    assert [(g.node, g.gfx_target, g.pci_address, g.partition, g.compute_units) for g in gpus] == [
        (1, None, None, None, 64), (2, None, None, None, 64)]
    assert [g.vram_bytes for g in gpus] == [17163091968, None]


def test_a_lone_node_keeps_a_nonzero_pci_function(fake_root):
    props = "simd_count 256\nsimd_per_cu 4\ngfx_target_version 90010\nlocation_id 25345\ndomain 0\ndrm_render_minor 128\n"
    root = fake_root({f"/{NODES}/1/properties": props})
    [gpu] = collect_amd(ProbeContext(root, {})).gpus
    assert (gpu.pci_address, gpu.partition) == ("0000:63:00.1", None)


@pytest.mark.parametrize("tree", TREES)
def test_no_amd_finding_on_a_healthy_captured_machine(tree, tmp_path, fake_root):
    """The captured topology, plus what a healthy ROCm machine also has: /dev/kfd, the render nodes, ROCm."""
    shutil.copytree(RECORDED / tree, tmp_path, dirs_exist_ok=True)
    files = {**linux_machine(), "/dev/kfd": "", "/opt/rocm/.info/version": "6.3.1-48\n"}
    files.update({gpu.render_node: "" for gpu in expected_gpus(tree)})
    snapshot = quick_snapshot(fake_root(files))
    assert len(snapshot.accelerators.amd.gpus) == len(raw_gpus(tree))
    amd_findings = [f for f in run_checks(snapshot)
                    if f.code in ("GPU001", "GPU006", "ROC001") or "AMD" in f.title or "ROCm" in f.title]
    assert amd_findings == []
