"""Simulated machines: a fake root (/proc, /sys, /dev, /etc, /opt), an NVML description for
the fake libnvidia-ml.so.1, environment variables, and what the audit must find there.

Hardware values follow public specifications: PCI ids from the PCI ID repository
(pci-ids.ucw.cz), compute capabilities from NVIDIA's CUDA GPUs table, gfx targets from
AMD's ROCm hardware-support matrix, TPU PCI ids from jax/_src/hardware_utils.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from machines import linux_machine

GIB = 1024**3


@dataclass
class SimulatedMachine:
    name: str
    files: dict[str, str]
    pci: list[tuple[str, str, str, str, str | None]] = field(default_factory=list)  # address, vendor, device, class, driver
    nvml: str | None = None  # description for the fake NVML; None: no libnvidia-ml on this machine
    python_packages: dict[str, str] = field(default_factory=dict)  # fake installed packages: relative path -> text
    env: dict[str, str] = field(default_factory=dict)
    # What the audit must report: dotted paths into the JSON report ("#" is a count) -> value
    expected: dict[str, object] = field(default_factory=dict)
    # Exactly these finding codes, from a full audit with this machine's CPU-only torch 2.13,
    # tensorflow-cpu 2.21 and CPU JAX meeting the simulated hardware.
    expected_findings: set[str] = field(default_factory=set)
    mentions: list[str] = field(default_factory=list)  # strings every human-readable format must show

    def build(self, root: Path) -> Path:
        for absolute, text in self.files.items():
            path = root / absolute.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for address, vendor, device, class_code, driver in self.pci:
            base = root / "sys/bus/pci/devices" / address
            base.mkdir(parents=True)
            (base / "vendor").write_text(vendor + "\n")
            (base / "device").write_text(device + "\n")
            (base / "class").write_text(class_code + "\n")
            if driver:
                os.symlink(f"../../../bus/pci/drivers/{driver}", base / "driver")
        return root

    def site_packages(self, directory: Path) -> Path | None:
        """A directory of fake installed packages for PYTHONPATH, or None when there are none."""
        for relative, text in self.python_packages.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return directory if self.python_packages else None


def nvidia_kernel(version: str, gpus: int) -> dict[str, str]:
    files = {"/proc/driver/nvidia/version":
             f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Release Build  (dvs-builder@U16-I3-B03-4-3)\n"
             "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
             "/dev/nvidiactl": "", "/dev/nvidia-uvm": ""}
    files.update({f"/dev/nvidia{i}": "" for i in range(gpus)})
    return files


def _h100_node() -> SimulatedMachine:
    gpus = "\n".join(
        f'gpu name="NVIDIA H100 80GB HBM3" uuid=GPU-{i:08x}-aaaa-bbbb-cccc-0000000000{i:02d} brand=2 arch=9 cc=9.0 '
        f"mem_total={80 * GIB} mem_free={79 * GIB} bus=00000000:{0x18 + i * 0x10:02X}:00.0 pci_id=0x233010DE "
        f"compute_mode=0 power_mw=700000 procs=0" + (" mig_current=1 mig_pending=1 max_mig=7" if i == 0 else " mig_current=0")
        for i in range(8))
        # MIG mode on GPU 0 only
    migs = "\n".join(f"mig gpu=0 index={slot} uuid=MIG-0000000{slot}-1111-2222-3333-444444444444 mem_total={20 * GIB}"
                     for slot in range(3))
    return SimulatedMachine(
        "h100-node",
        {**linux_machine(processors=16), **nvidia_kernel("550.90.07", 8)},
        pci=[(f"0000:{0x18 + i * 0x10:02x}:00.0", "0x10de", "0x2330", "0x030200", "nvidia") for i in range(8)],
        nvml=f"driver 550.90.07\ncuda 12040\nnvml 12.550.90.07\n{gpus}\n{migs}\n",
        expected={"accelerators.nvidia.source": "nvml", "accelerators.nvidia.driver_version": "550.90.07",
                  "accelerators.nvidia.cuda_driver_version": "12.4", "accelerators.nvidia.gpus.#": 8,
                  "accelerators.nvidia.gpus.0.compute_capability": "9.0",
                  "accelerators.nvidia.gpus.0.architecture": "Hopper",
                  "accelerators.nvidia.gpus.0.memory_total_bytes": 80 * GIB,
                  "accelerators.nvidia.gpus.0.mig_mode_current": True, "accelerators.nvidia.gpus.0.mig_instances.#": 3,
                  "accelerators.nvidia.gpus.0.mig_instances.2.memory_total_bytes": 20 * GIB,
                  "accelerators.nvidia.gpus.7.mig_mode_current": False,
                  "accelerators.nvidia.gpus.7.pci_bus_id": "00000000:88:00.0",
                  "accelerators.nvidia.gpus.7.power_limit_watts": 700.0,
                  "accelerators.nvidia_kernel.driver_version": "550.90.07",
                  "accelerators.nvidia_kernel.device_nodes.#": 10, "accelerators.pci.#": 8,
                  "accelerators.pci.0.driver": "nvidia", "accelerators.pci.0.kind": "gpu"},
        # CPU-only torch and TensorFlow next to 8 GPUs; R550 runs CUDA 12 but not 13, so cu126.
        expected_findings={"FW006"},
        mentions=["NVIDIA H100 80GB HBM3", "cc 9.0", "Hopper", "MIG on, 3 instance(s)", "550.90.07",
                  "supports CUDA up to 12.4", "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126",
                  'pip install "tensorflow[and-cuda]==2.21.0"'],
    )


def _workstation(name: str, device_id: str, driver: str, cuda: int, gpu: str, cc: str, arch: int, arch_name: str,
                 memory: int, torch_fix: str) -> SimulatedMachine:
    return SimulatedMachine(
        name,
        {**linux_machine(), **nvidia_kernel(driver, 1)},
        pci=[("0000:01:00.0", "0x10de", device_id, "0x030000", "nvidia")],
        nvml=(f"driver {driver}\ncuda {cuda}\nnvml 12.{driver}\n"
              f'gpu name="{gpu}" uuid=GPU-11111111-2222-3333-4444-555555555555 brand=5 arch={arch} cc={cc} '
              f"mem_total={memory} bus=00000000:01:00.0 compute_mode=0 power_mw=450000 procs=1\n"),
        expected={"accelerators.nvidia.gpus.#": 1, "accelerators.nvidia.gpus.0.name": gpu,
                  "accelerators.nvidia.gpus.0.compute_capability": cc, "accelerators.nvidia.gpus.0.architecture": arch_name,
                  "accelerators.nvidia.gpus.0.brand": "GeForce", "accelerators.nvidia.gpus.0.memory_total_bytes": memory,
                  "accelerators.nvidia.cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}",
                  "accelerators.pci.0.device_id": device_id},
        expected_findings={"FW006"},
        mentions=[gpu, f"cc {cc}", arch_name, driver, torch_fix],
    )


def _laptop_without_gpu() -> SimulatedMachine:
    return SimulatedMachine(
        "laptop-no-gpu",
        linux_machine(processors=8, total_kib=16 * 1024 * 1024),
        # Intel Iris Xe integrated graphics, driven by i915: a GPU, but no CUDA device.
        pci=[("0000:00:02.0", "0x8086", "0x46a6", "0x030000", "i915")],
        expected={"accelerators.nvidia": None, "accelerators.nvidia_kernel": None, "accelerators.amd": None,
                  "accelerators.tpu": None, "accelerators.pci.#": 1, "accelerators.pci.0.vendor": "Intel"},
        mentions=["PCI 0000:00:02.0", "Intel gpu 0x46a6, driver i915", "libnvidia-ml.so.1"],
    )


def _container_without_device_nodes() -> SimulatedMachine:
    files = {**linux_machine(), **nvidia_kernel("550.54.15", 0), "/.dockerenv": ""}
    for node in ("/dev/nvidiactl", "/dev/nvidia-uvm"):
        del files[node]  # started without --gpus: the runtime created no NVIDIA nodes at all
    return SimulatedMachine(
        "container-without-gpu-access",
        files,
        pci=[("0000:3b:00.0", "0x10de", "0x20b5", "0x030200", "nvidia")],  # the host's A100, seen through sysfs
        expected={"accelerators.nvidia": None, "accelerators.nvidia_kernel.driver_version": "550.54.15",
                  "accelerators.nvidia_kernel.device_nodes": [], "machine.host.container": "docker"},
        expected_findings={"GPU002", "GPU003"},
        mentions=["GPU002", "GPU003", "--gpus all", "device nodes: none"],
    )


def _mi300x_node() -> SimulatedMachine:
    files = {**linux_machine(processors=32), "/dev/kfd": "", "/opt/rocm/.info/version": "6.3.1-48\n"}
    pci = []
    cpu_node = "cpu_cores_count 96\nsimd_count 0\nvendor_id 4098\n"
    files["/sys/class/kfd/kfd/topology/nodes/0/properties"] = cpu_node
    for gpu in range(8):
        node, minor = gpu + 1, 128 + gpu
        bus = 0x0c + gpu * 0x10
        files[f"/dev/dri/renderD{minor}"] = ""
        files[f"/sys/class/kfd/kfd/topology/nodes/{node}/properties"] = (
            f"cpu_cores_count 0\nsimd_count 1216\nsimd_per_cu 4\ngfx_target_version 90402\nvendor_id 4098\n"
            f"device_id 29857\nlocation_id {bus << 8}\ndomain 0\ndrm_render_minor {minor}\n")
        files[f"/sys/class/kfd/kfd/topology/nodes/{node}/name"] = "gfx942\n"
        files[f"/sys/class/kfd/kfd/topology/nodes/{node}/mem_banks/0/properties"] = (
            f"heap_type 1\nsize_in_bytes {192 * GIB}\nwidth 8192\n")
        pci.append((f"0000:{bus:02x}:00.0", "0x1002", "0x74a1", "0x120000", "amdgpu"))
    return SimulatedMachine(
        "mi300x-node", files, pci=pci,
        python_packages={"amdsmi/__init__.py": FAKE_AMDSMI,
                         "amdsmi-6.4.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: amdsmi\nVersion: 6.4.0\n"},
        expected={"accelerators.amd.rocm_version": "6.3.1-48", "accelerators.amd.kfd_present": True,
                  "accelerators.amd.gpus.#": 8, "accelerators.amd.gpus.0.gfx_target": "gfx942",
                  "accelerators.amd.gpus.0.vram_bytes": 192 * GIB, "accelerators.amd.gpus.0.compute_units": 304,
                  "accelerators.amd.gpus.7.render_node": "/dev/dri/renderD135",
                  "accelerators.amd.gpus.0.pci_address": "0000:0c:00.0", "accelerators.amd.render_nodes.#": 8,
                  "accelerators.pci.#": 8, "accelerators.pci.0.kind": "accelerator", "accelerators.nvidia": None,
                  "accelerators.amd_smi.driver_version": "6.10.5", "accelerators.amd_smi.gpus.#": 8,
                  "accelerators.amd_smi.gpus.0.name": "AMD Instinct MI300X",
                  "accelerators.amd_smi.gpus.0.gfx_target": "gfx942",
                  "accelerators.amd_smi.gpus.0.vram_bytes": 196592 * 1024 * 1024,
                  "accelerators.amd_smi.gpus.0.compute_units": 304,
                  "accelerators.amd_smi.gpus.1.pci_address": "0000:1c:00.0",
                  "accelerators.amd_smi.gpus.7.name": None,
                  "accelerators.amd_smi.gpus.7.errors.#": 1},
        mentions=["AMD Instinct MI300X", "AMD SMI GPU 7", "AMDSMI_STATUS_NOT_SUPPORTED", "ROCm 6.3.1-48", "gfx942", "192.0 GiB", "304 CUs", "/dev/kfd present", "/dev/dri/renderD128"],
    )


# The amdsmi Python binding, standing in for AMD SMI on an MI300X node: the same functions
# and dict keys as the AMD SMI Python API reference, answering from a table.
FAKE_AMDSMI = """
class AmdSmiLibraryException(Exception):
    pass

_GPUS = [{"bdf": "0000:%02x:00.0" % (0x0c + i * 0x10)} for i in range(8)]
_started = False

def amdsmi_init(flags=None):
    global _started
    _started = True

def amdsmi_shut_down():
    global _started
    _started = False

def amdsmi_get_processor_handles():
    assert _started
    return list(range(len(_GPUS)))

def amdsmi_get_gpu_asic_info(handle):
    if handle == 7:
        raise AmdSmiLibraryException("Error code:\\n\\t8 | AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported")
    return {"market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "device_id": "0x74a1",
            "num_compute_units": 304, "target_graphics_version": "gfx942", "asic_serial": "N/A"}

def amdsmi_get_gpu_vram_info(handle):
    return {"vram_type": "HBM3", "vram_size": 196592, "vram_bit_width": 8192}

def amdsmi_get_gpu_device_bdf(handle):
    return _GPUS[handle]["bdf"]

def amdsmi_get_gpu_driver_info(handle):
    return {"driver_name": "amdgpu", "driver_version": "6.10.5", "driver_date": "2015/01/01 00:00"}
"""


def _tpu_v5e_vm() -> SimulatedMachine:
    files = {**linux_machine(processors=112), "/dev/vfio/vfio": ""}
    files.update({f"/dev/vfio/{i}": "" for i in range(4)})
    return SimulatedMachine(
        "tpu-v5e-vm", files,
        pci=[(f"0000:00:{0x04 + i:02x}.0", "0x1ae0", "0x0063", "0x120000", "vfio-pci") for i in range(4)]
        + [("0000:00:03.0", "0x1ae0", "0x0042", "0x020000", "gve")],  # gVNIC: Google's, but a network card
        env={"TPU_ACCELERATOR_TYPE": "v5litepod-4", "TPU_NAME": "trainer-1", "TPU_WORKER_ID": "0"},
        # The CPU builds of TensorFlow and JAX try the TPU (asked to, by the signals) and fail.
        expected_findings={"TPU001"},
        expected={"accelerators.tpu.accelerator_type": "v5litepod-4", "accelerators.tpu.chip_count": 4,
                  "accelerators.tpu.worker_id": "0", "accelerators.tpu.name": "trainer-1",
                  "accelerators.tpu.device_nodes": ["/dev/vfio/0", "/dev/vfio/1", "/dev/vfio/2", "/dev/vfio/3"],
                  "accelerators.pci.#": 4},  # the gVNIC is not an accelerator
        mentions=["TPU001", 'pip install -U "jax[tpu]"', "pip install tensorflow-tpu", "v5litepod-4", "4 chip(s)", "TPU_ACCELERATOR_TYPE=v5litepod-4", "/dev/vfio/0"],
    )


def _nvml_errors() -> SimulatedMachine:
    gpus = "\n".join(
        f'gpu name="NVIDIA A100-SXM4-80GB" uuid=GPU-a100000{i}-0000-0000-0000-000000000000 brand=2 arch=7 cc=8.0 '
        f"mem_total={80 * GIB} bus=00000000:{0x07 + i:02X}:00.0 compute_mode=0 power_mw=400000 procs=0" for i in range(2))
    return SimulatedMachine(
        "nvml-errors",
        {**linux_machine(), **nvidia_kernel("535.183.01", 2)},
        pci=[(f"0000:{0x07 + i:02x}:00.0", "0x10de", "0x20b2", "0x030200", "nvidia") for i in range(2)],
        nvml=f"driver 535.183.01\ncuda 12020\n{gpus}\nfail gpu=1 nvmlDeviceGetHandleByIndex=15\n",
        expected={"accelerators.nvidia.gpus.#": 2, "accelerators.nvidia.gpus.0.name": "NVIDIA A100-SXM4-80GB",
                  "accelerators.nvidia.gpus.0.errors": [], "accelerators.nvidia.gpus.1.index": 1,
                  "accelerators.nvidia.gpus.1.name": None},
        expected_findings={"GPU004", "FW006"},
        mentions=["GPU004", "GPU 1"],
    )


def _gpu_without_driver() -> SimulatedMachine:
    return SimulatedMachine(
        "gpu-claimed-by-nouveau",
        linux_machine(),
        pci=[("0000:01:00.0", "0x10de", "0x2504", "0x030000", "nouveau")],  # RTX 3060 on the open-source driver
        expected={"accelerators.pci.0.driver": "nouveau", "accelerators.nvidia": None},
        expected_findings={"GPU001"},
        mentions=["GPU001", "claimed by nouveau", "ubuntu-drivers"],
    )


MACHINES = [
    _h100_node(),
    _workstation("rtx4090-workstation", "0x2684", "560.35.03", 12060, "NVIDIA GeForce RTX 4090", "8.9", 8, "Ada",
                 24 * GIB, "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"),
    # torch 2.13 ships sm_120 only in its CUDA 13 builds, which need R580: the driver must move, or torch
    # go back to 2.11, whose CUDA 12.8 build has sm_120 and runs on R570.
    _workstation("rtx5090-workstation", "0x2b85", "570.133.07", 12080, "NVIDIA GeForce RTX 5090", "12.0", 10,
                 "Blackwell", 32 * GIB, "Driver 570.133.07 is too old for every torch CUDA build of torch 2.13 and "
                 "newer with kernels for these GPUs: update the NVIDIA driver to 580.65.06 or newer, then `pip install "
                 "torch==2.13.* --index-url https://download.pytorch.org/whl/cu130`; or keep this driver with torch "
                 "2.11 (`pip install torch==2.11.* --index-url https://download.pytorch.org/whl/cu128`)"),
    _laptop_without_gpu(),
    _container_without_device_nodes(),
    _mi300x_node(),
    _tpu_v5e_vm(),
    _nvml_errors(),
    _gpu_without_driver(),
]
