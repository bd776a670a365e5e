"""GPU checks from constructed snapshots: each fires on its case and stays quiet on the near miss."""

from __future__ import annotations

import pytest

from auditor.checks import run_checks
from auditor.facts import (AmdFacts, AmdGpu, FrameworkDevice, FrameworkFacts, NvidiaFacts, NvidiaGpu,
                           NvidiaKernelFacts, PciDevice, ProbeRun)
from auditor.probes.amd import gfx_target
from auditor.probes.runner import _match_gpus_by_uuid
from conftest import quick_snapshot
from machines import linux_machine


@pytest.fixture
def snapshot(fake_root):
    snap = quick_snapshot(fake_root(linux_machine()))
    snap.frameworks = {}
    nvidia_run = snap.probe("nvidia")  # a working NVML unless a test says otherwise
    nvidia_run.status, nvidia_run.reason = "ok", None
    return snap


def gpu_codes(snapshot) -> list[str]:
    return [f.code for f in run_checks(snapshot) if f.code.startswith("GPU")]


def test_gfx_target_decoding():
    assert [gfx_target(v) for v in (90402, 90010, 110000, 100300, 120001)] == ["gfx942", "gfx90a", "gfx1100",
                                                                               "gfx1030", "gfx1201"]


@pytest.mark.parametrize("vendor, driver, fires", [
    ("NVIDIA", "nouveau", True), ("NVIDIA", None, True), ("NVIDIA", "vfio-pci", True), ("NVIDIA", "nvidia", False),
    ("AMD", "amdgpu", False), ("AMD", None, True), ("Intel", "xe", False), ("Intel", "i915", False),
])
def test_gpu_driver_not_loaded(snapshot, vendor, driver, fires):
    vendor_id = {"NVIDIA": "0x10de", "AMD": "0x1002", "Intel": "0x8086"}[vendor]
    snapshot.accelerators.pci = [PciDevice("0000:01:00.0", vendor_id, "0x1234", "0x030000", vendor, "gpu", driver)]
    assert gpu_codes(snapshot) == (["GPU001"] if fires else [])


def test_device_nodes_missing_fires_only_without_numbered_nodes(snapshot):
    snapshot.accelerators.nvidia_kernel = NvidiaKernelFacts("550.54.15", ["/dev/nvidiactl", "/dev/nvidia-uvm"])
    assert gpu_codes(snapshot) == ["GPU002"]
    snapshot.accelerators.nvidia_kernel.device_nodes.append("/dev/nvidia0")
    assert gpu_codes(snapshot) == []


def test_nvml_missing_next_to_a_loaded_driver(snapshot):
    snapshot.accelerators.nvidia_kernel = NvidiaKernelFacts("550.54.15", ["/dev/nvidia0", "/dev/nvidiactl"])
    nvidia_run = snapshot.probe("nvidia")
    nvidia_run.status, nvidia_run.reason = "absent", "libnvidia-ml.so.1 not found and nvidia-smi is not on PATH"
    finding = next(f for f in run_checks(snapshot) if f.code == "GPU003")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in finding.fix
    snapshot.accelerators.nvidia_kernel = None  # no driver at all: nothing to say about NVML
    assert "GPU003" not in gpu_codes(snapshot)


def test_driver_errors_per_gpu_and_for_the_whole_driver(snapshot):
    snapshot.accelerators.nvidia = NvidiaFacts(driver_version="535.183.01", gpus=[
        NvidiaGpu(index=0, name="A100"), NvidiaGpu(index=1, errors=["nvmlDeviceGetHandleByIndex: GPU is lost"])])
    findings = [f for f in run_checks(snapshot) if f.code == "GPU004"]
    assert [f.title for f in findings] == ["GPU 1 (unknown) returned driver errors"]
    assert "nvidia-smi -r -i 1" in findings[0].fix
    snapshot.accelerators.nvidia.gpus[1].errors = []
    run = snapshot.probe("nvidia")
    run.status, run.reason = "error", "NVMLError_Unknown: Unknown Error"
    assert [f.title for f in run_checks(snapshot) if f.code == "GPU004"] == [
        "The NVIDIA driver could not be queried: NVMLError_Unknown: Unknown Error"]


def test_kernel_and_user_space_driver_versions_must_match(snapshot):
    snapshot.accelerators.nvidia_kernel = NvidiaKernelFacts("550.90.07", ["/dev/nvidia0"])
    snapshot.accelerators.nvidia = NvidiaFacts(driver_version="550.90.07")
    assert gpu_codes(snapshot) == []
    snapshot.accelerators.nvidia.driver_version = "560.35.03"
    finding = next(f for f in run_checks(snapshot) if f.code == "GPU005")
    assert finding.title == "Kernel module 550.90.07 but user-space driver 560.35.03"


def test_rocm_device_nodes(snapshot):
    snapshot.accelerators.amd = AmdFacts(kfd_present=True, render_nodes=["/dev/dri/renderD128"],
                                         gpus=[AmdGpu(node=1, gfx_target="gfx942")])
    assert gpu_codes(snapshot) == []
    snapshot.accelerators.amd.render_nodes = []
    finding = next(f for f in run_checks(snapshot) if f.code == "GPU006")
    assert finding.title == "1 AMD GPU(s) in the KFD topology, but /dev/dri/renderD* missing"


def test_framework_gpus_are_matched_to_nvml_by_uuid_not_index():
    nvidia = NvidiaFacts(gpus=[NvidiaGpu(index=0, uuid="GPU-aaaa"), NvidiaGpu(index=1, uuid="GPU-bbbb")])
    # CUDA_VISIBLE_DEVICES=1,0: the framework's cuda:0 is NVML's GPU 1
    torch = FrameworkFacts(name="torch", probe=ProbeRun("torch", "ok"), devices=[
        FrameworkDevice("cpu", "cpu"), FrameworkDevice("cuda:0", "cuda", uuid="BBBB"), FrameworkDevice("cuda:1", "cuda", uuid="aaaa")])
    from auditor.facts import AcceleratorFacts

    _match_gpus_by_uuid({"torch": torch}, AcceleratorFacts(nvidia=nvidia))
    assert [d.nvml_index for d in torch.devices] == [None, 1, 0]
