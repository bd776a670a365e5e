"""The facts snapshot: a typed, versioned record of what the probes found.

Probes fill it, checks read it, renderers show it; nothing else is passed around.
Each section carries ``sources`` (field name -> where the value came from), and every
probe leaves a ``ProbeRun`` saying whether it worked, so a reader can tell "absent"
from "we could not look".

``schema_version`` follows pip's inspect-report rule: the major part changes only when
a field is removed or changes meaning or type; new fields bump the minor part, and
readers ignore keys they do not know (``from_dict`` below does), so old snapshots stay
readable as the schema grows.

Unknown is explicit: ``None`` in an Optional field means nobody measured it (NVML gave no memory
for a unified-memory GPU, a snapshot written by another tool lacks the driver), never "zero" or
"none found". 1.4 widened three fields that way: ``FrameworkFacts.devices`` (None: the framework's
devices were not listed, distinct from an empty list, "it saw none"), ``FrameworkFacts.proofs``
(None: no proof was run, distinct from a failed one and from one ``skipped`` by mode) and
``PackageFacts.version``. Checks and requirements never fail on an unknown; they say it was not
measured here, and how to measure it. 1.5 added what real recorded outputs hold: an NVIDIA GPU's
PCIe link and clock-event reasons, MIG profiles, an AMD GPU's partition, an Arm CPU's core name,
and widened ``NvidiaGpu.mig_instances`` (None: not listed, as when ``nvidia-smi -L`` did not answer)
and ``CpuFacts.architecture`` (None: a fake root whose tree does not say). 1.6 added what a speed
figure needs to be judged against its device's peak: the CPU's clock, and for each timed matmul the
threads it ran with and whether it had the machine to itself, an NVIDIA GPU's default power limit, and when each probe started.
1.7 added ``Snapshot.auditor_python``: the interpreter the auditor ran in, apart from
``machine.python``, the interpreter it audited (the same one unless --python named another; None
before 1.7, when they were always the same). 1.8 added the collective proofs, ``Snapshot.collectives``
(None: none was run, as without --deep, distinct from [], run for no framework), and what judging them
needs: an NVIDIA GPU's NVLinks and each GPU pair's peer-to-peer status.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

SCHEMA_VERSION = "1.8"

ProbeStatus = Literal["ok", "absent", "error", "timeout", "crashed", "skipped"]


@dataclass
class ProbeRun:
    """How one probe went: the runner fills this, never the probe itself."""

    name: str
    status: ProbeStatus
    reason: Optional[str] = None
    duration_s: float = 0.0
    started_s: Optional[float] = None  # when it started, in seconds after the audit began (None before 1.6)


# --- machine -------------------------------------------------------------------------


# What platform.python_version() gives: 3.11.7, 3.13.0rc1, 3.14.0a1+ (a build from source).
PYTHON_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?((a|b|rc)[0-9]+)?\+?")


@dataclass
class PythonFacts:
    version: str = field(metadata={"pattern": PYTHON_VERSION})
    implementation: str
    executable: str
    prefix: str
    environment: str  # "venv", "uv", "conda", "system"
    environment_path: Optional[str] = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class HostFacts:
    os: str  # platform.system(): Linux, Darwin, Windows
    os_release: Optional[str] = None  # "Debian GNU/Linux 12 (bookworm)", "macOS 14.5"
    kernel: Optional[str] = None
    architecture: Optional[str] = None
    libc: Optional[str] = None
    container: Optional[str] = None  # docker, podman, kubernetes, lxc, wsl...
    container_signals: list[str] = field(default_factory=list)
    virtualization: Optional[str] = None
    virtualization_signals: list[str] = field(default_factory=list)
    ci: Optional[str] = None  # github-actions, gitlab-ci, ... or "generic"
    ci_signals: list[str] = field(default_factory=list)
    environment_variables: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class CpuFacts:
    vendor: Optional[str]
    model: Optional[str]
    architecture: Optional[str]  # x86_64, aarch64, ppc64le, riscv64; None when the tree does not say
    logical_cpus: Optional[int]
    physical_cores: Optional[int]
    affinity_cpus: Optional[int]  # CPUs this process may be scheduled on
    cgroup_cpu_quota: Optional[float]  # cgroup bandwidth limit in CPUs, None when unlimited
    usable_cpus: Optional[int]  # min of the above, the number to size thread pools with
    features: dict[str, bool] = field(default_factory=dict)
    # The highest clock the CPU announces, in MHz (cpufreq's maximum, else the model name's
    # "@ 2.10GHz", else /proc/cpuinfo's "cpu MHz"); what a CPU's peak FLOP/s is computed from.
    clock_mhz: Optional[float] = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class MemoryFacts:
    total_bytes: Optional[int]
    available_bytes: Optional[int]
    cgroup_limit_bytes: Optional[int]  # None when no limit is set
    usable_bytes: Optional[int]
    swap_total_bytes: Optional[int]
    swap_free_bytes: Optional[int]
    shm_bytes: Optional[int]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class MachineFacts:
    host: Optional[HostFacts] = None
    python: Optional[PythonFacts] = None
    cpu: Optional[CpuFacts] = None
    memory: Optional[MemoryFacts] = None


# --- packages ------------------------------------------------------------------------


@dataclass
class PackageFacts:
    name: str  # the distribution name as its metadata spells it
    version: Optional[str]  # None: installed, version unknown (a snapshot from a report that did not say)
    location: Optional[str] = None
    installer: Optional[str] = None  # pip, uv, conda... from the INSTALLER file
    modules: list[str] = field(default_factory=list)  # top-level import names it installs


@dataclass
class UnreadableDistribution:
    """A distribution's metadata directory (``*.dist-info``, ``*.egg-info``) on sys.path that
    could not be read, or only in part: a METADATA file that is missing, not a file, not UTF-8,
    or without a Name or Version; or another metadata file (RECORD, top_level.txt, INSTALLER)
    that cannot be read. The other distributions are listed as usual."""

    path: str
    problem: str  # which file, and what is wrong with it


# --- accelerators --------------------------------------------------------------------


@dataclass
class PciDevice:
    """One accelerator-like PCI function from sysfs, whether or not a driver claims it."""

    address: str  # 0000:3b:00.0
    vendor_id: str  # 0x10de
    device_id: str
    class_code: str  # 0x030200
    vendor: Optional[str] = None  # NVIDIA, AMD, Intel, Google
    kind: str = "display"  # gpu (3D/VGA controller), accelerator (processing accelerator), display
    driver: Optional[str] = None  # the bound kernel driver, None when unclaimed


@dataclass
class MigInstance:
    index: int
    uuid: Optional[str] = None
    memory_total_bytes: Optional[int] = None
    profile: Optional[str] = None  # "1g.10gb", "3g.40gb": the GPU instance profile


@dataclass
class NvidiaGpu:
    index: int
    name: Optional[str] = None
    uuid: Optional[str] = None
    brand: Optional[str] = None  # GeForce, Tesla, Quadro/RTX, ...
    architecture: Optional[str] = None  # Ampere, Hopper, Blackwell, ...
    compute_capability: Optional[str] = None
    memory_total_bytes: Optional[int] = None
    memory_free_bytes: Optional[int] = None
    pci_bus_id: Optional[str] = None
    mig_mode_current: Optional[bool] = None
    mig_mode_pending: Optional[bool] = None
    mig_instances: Optional[list[MigInstance]] = field(default_factory=list)  # None: not listed
    compute_mode: Optional[str] = None  # Default, Exclusive_Process, Prohibited
    power_limit_watts: Optional[float] = None
    default_power_limit_watts: Optional[float] = None  # the board's default; a lower limit caps its speed
    process_count: Optional[int] = None
    # The PCIe link as trained now and at most (GPU and slot together); an idle GPU lowers its
    # generation to save power, so only a width below the maximum means a degraded link.
    pcie_link_gen_current: Optional[int] = None
    pcie_link_gen_max: Optional[int] = None
    pcie_link_width_current: Optional[int] = None
    pcie_link_width_max: Optional[int] = None
    # Why the clocks are held down now: "gpu_idle", "sw_power_cap", "hw_slowdown", "sw_thermal_slowdown"...
    # (NVML's clocks-event reason names); [] none active, None not read.
    clock_event_reasons: Optional[list[str]] = None
    # NVLinks up, of the links the GPU has (nvmlDeviceGetNvLinkState per link); None: no NVLink, or not read.
    nvlinks_active: Optional[int] = None
    nvlinks_total: Optional[int] = None
    errors: list[str] = field(default_factory=list)  # queries the driver refused for this GPU
    # Queries whose text was not UTF-8: their fields hold it decoded with U+FFFD replacement characters.
    not_utf8: list[str] = field(default_factory=list)


# nvmlGpuP2PStatus_t, as words; None where the driver did not answer.
P2PStatus = Literal["ok", "chipset-not-supported", "gpu-not-supported", "topology-not-supported",
                    "disabled-by-regkey", "not-supported", "unknown"]


@dataclass
class GpuPeerStatus:
    """Whether two GPUs can reach each other's memory directly (peer to peer), as NVML says
    (nvmlDeviceGetP2PStatus): reading over any path (PCIe or NVLink), and over NVLink."""

    gpu: int
    peer: int
    read: Optional[P2PStatus] = None
    nvlink: Optional[P2PStatus] = None


@dataclass
class NvidiaFacts:
    """What the NVIDIA driver reports, through NVML or, when NVML fails, nvidia-smi."""

    source: str = "nvml"  # nvml or nvidia-smi
    driver_version: Optional[str] = None
    cuda_driver_version: Optional[str] = None  # the highest CUDA the driver supports
    nvml_version: Optional[str] = None
    gpus: list[NvidiaGpu] = field(default_factory=list)
    gpus_left_out: int = 0  # GPUs reported past the most a report lists (nvidia_smi.MAX_GPUS): counted only
    nvml_error: Optional[str] = None  # why NVML was not used, when nvidia-smi answered instead
    errors: list[str] = field(default_factory=list)  # system-level queries the driver refused
    sources: dict[str, str] = field(default_factory=dict)
    not_utf8: list[str] = field(default_factory=list)  # system-level queries whose text was not UTF-8 (see NvidiaGpu)
    # Each pair of GPUs among the first few (nvml_child.P2P_MAX_GPUS); None: not read (nvidia-smi answered).
    p2p: Optional[list[GpuPeerStatus]] = None


@dataclass
class NvidiaKernelFacts:
    """The NVIDIA kernel driver and device nodes, as the filesystem shows them."""

    driver_version: Optional[str] = None  # from /proc/driver/nvidia/version
    device_nodes: list[str] = field(default_factory=list)  # /dev/nvidia0, /dev/nvidiactl, ...
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class CudaToolkitFacts:
    """The system CUDA toolkit: what nvcc and the loader find. Never "the CUDA version"
    of a framework, which brings and loads its own (see FrameworkBuild / FrameworkRuntime)."""

    nvcc_path: Optional[str] = None
    nvcc_version: Optional[str] = None  # 13.0.88
    cuda_home: Optional[str] = None
    libraries: dict[str, str] = field(default_factory=dict)  # soname -> path the loader resolves
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class AmdGpu:
    node: int  # KFD topology node
    gfx_target: Optional[str] = None  # gfx942
    name: Optional[str] = None
    vram_bytes: Optional[int] = None
    compute_units: Optional[int] = None
    render_node: Optional[str] = None  # /dev/dri/renderD128
    pci_address: Optional[str] = None
    # The compute partition of its physical GPU (MI300 CPX shows each as a KFD node); None when whole
    partition: Optional[int] = None


@dataclass
class AmdFacts:
    kfd_present: bool = False
    render_nodes: list[str] = field(default_factory=list)
    rocm_version: Optional[str] = None
    gpus: list[AmdGpu] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class AmdSmiGpu:
    index: int
    name: Optional[str] = None
    gfx_target: Optional[str] = None
    vram_bytes: Optional[int] = None
    compute_units: Optional[int] = None
    pci_address: Optional[str] = None
    errors: list[str] = field(default_factory=list)


@dataclass
class AmdSmiFacts:
    """What AMD SMI (the driver's management library) reports, when amdsmi is installed."""

    driver_version: Optional[str] = None
    gpus: list[AmdSmiGpu] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class TpuFacts:
    """Signals that this is a Cloud TPU host; read offline, never from the metadata server."""

    signals: list[str] = field(default_factory=list)
    accelerator_type: Optional[str] = None  # v5litepod-4
    name: Optional[str] = None
    worker_id: Optional[str] = None
    chip_count: Optional[int] = None  # PCI functions of vendor 0x1ae0
    device_nodes: list[str] = field(default_factory=list)  # /dev/accel*, /dev/vfio/N
    libtpu_version: Optional[str] = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class AppleFacts:
    macos_version: Optional[str] = None
    arm64: bool = False
    mps_eligible: bool = False  # Apple silicon on macOS 12.3 or later
    tensorflow_metal: Optional[str] = None  # installed version
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class JetsonFacts:
    """An NVIDIA Jetson (Tegra SoC) module: its integrated GPU is not on PCI and NVML does not
    describe it, so it is found from the L4T release file and the device tree."""

    model: Optional[str] = None  # /proc/device-tree/model: "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    compatible: list[str] = field(default_factory=list)  # /proc/device-tree/compatible: "nvidia,p3767-0000", "nvidia,tegra234"
    soc: Optional[str] = None  # tegra194 (Xavier), tegra234 (Orin), ... from the compatible strings
    l4t_release: Optional[str] = None  # "35.4.1" from /etc/nv_tegra_release ("# R35 (release), REVISION: 4.1")
    jetpack: Optional[str] = None  # "5.1.2" from the nvidia-jetpack package, when it is installed
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class AcceleratorFacts:
    pci: list[PciDevice] = field(default_factory=list)
    nvidia: Optional[NvidiaFacts] = None
    nvidia_kernel: Optional[NvidiaKernelFacts] = None
    cuda_toolkit: Optional[CudaToolkitFacts] = None
    amd: Optional[AmdFacts] = None
    amd_smi: Optional[AmdSmiFacts] = None
    tpu: Optional[TpuFacts] = None
    apple: Optional[AppleFacts] = None
    jetson: Optional[JetsonFacts] = None
    # CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, HIP/ROCR_VISIBLE_DEVICES... as set for this audit
    visibility: dict[str, str] = field(default_factory=dict)


# --- frameworks ----------------------------------------------------------------------


@dataclass
class FrameworkDevice:
    id: str  # the framework's own name: "cuda:0", "cpu", "/physical_device:GPU:0"
    kind: str  # cpu, cuda, rocm, mps, xpu, gpu, tpu
    name: Optional[str] = None
    memory_bytes: Optional[int] = None
    compute_capability: Optional[str] = None
    uuid: Optional[str] = None
    nvml_index: Optional[int] = None  # the NVML GPU with the same UUID (indices differ under CUDA_VISIBLE_DEVICES)


@dataclass
class ComputeProof:
    """A real computation on one device, compared with a float64 reference.

    ``skipped`` says why a proof was deliberately not run in this mode (``ok`` is then
    false, and the proof is neither a pass nor a failure). ``non_finite`` says the result
    held NaN or infinity: ``max_relative_error`` is then null (JSON has no such numbers),
    and the proof failed.
    """

    device: str
    operation: str
    dtype: str
    ok: bool
    max_relative_error: Optional[float] = None
    tolerance: Optional[float] = None
    seconds: Optional[float] = None
    error: Optional[str] = None
    workload: Optional[str] = None  # matmul, conv2d, train-step (absent in 1.0/1.1 snapshots: a matmul)
    compiler: Optional[str] = None  # None for eager; xla, torch.compile
    gflops: Optional[float] = None  # achieved by a larger timed matmul on the same device and dtype
    skipped: Optional[str] = None
    non_finite: bool = False
    missing_module: Optional[str] = None  # the top-level module the failing computation found not installed
    threads: Optional[int] = None  # the intra-op threads the framework ran the timed matmul with, when it says
    # True: the timed matmul had the machine to itself (after every framework imported, one framework
    # and device at a time); False: it was timed while other probes ran; None: not recorded (before 1.6).
    measured_alone: Optional[bool] = None

    def __post_init__(self) -> None:
        # Snapshots before 1.2 named the compiler only in the operation: "matmul (XLA jit_compile)".
        if self.compiler is None and "(XLA" in self.operation:
            self.compiler = "xla"
        # NaN or infinity is wrong whatever a snapshot's writer concluded from it.
        if self.non_finite:
            self.ok = False

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped


@dataclass
class FrameworkBuild:
    variant: str  # cpu, cuda, rocm, xpu, mps
    cuda_version: Optional[str] = None  # the CUDA the framework was compiled against
    cudnn_version: Optional[str] = None
    rocm_version: Optional[str] = None
    compiled_architectures: list[str] = field(default_factory=list)
    cpu_capability: Optional[str] = None
    mkl: Optional[bool] = None
    onednn: Optional[bool] = None
    openmp: Optional[bool] = None
    backends_built: dict[str, bool] = field(default_factory=dict)  # compiled in, whether or not usable here
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class FrameworkRuntime:
    """What the imported framework actually loaded and can reach, as opposed to its build."""

    cuda_version: Optional[str] = None
    cudnn_version: Optional[str] = None
    loaded_libraries: list[str] = field(default_factory=list)
    backends: dict[str, bool] = field(default_factory=dict)  # e.g. cuda, mps, xpu available
    backend_errors: dict[str, str] = field(default_factory=dict)  # why a backend could not be reached
    threads: Optional[int] = None


@dataclass
class FrameworkFacts:
    name: str  # torch, tensorflow
    probe: ProbeRun
    distribution: Optional[str] = None  # the installed distribution that provides the module
    distribution_version: Optional[str] = None
    version: Optional[str] = None  # the module's own __version__
    module_path: Optional[str] = None
    import_seconds: Optional[float] = None
    build: Optional[FrameworkBuild] = None
    runtime: Optional[FrameworkRuntime] = None
    # None: not listed (unknown), distinct from [] (listed, none found) and from a list without a GPU.
    devices: Optional[list[FrameworkDevice]] = field(default_factory=list)
    # None: no proof was run (unknown), distinct from a failed proof and from one skipped by mode.
    proofs: Optional[list[ComputeProof]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    # The import worked, then the probe failed (build, devices and proofs are then missing): why,
    # and the top-level module whose absence it reported, when that was the failure.
    probe_error: Optional[str] = None
    missing_module: Optional[str] = None


# --- export and serving paths -------------------------------------------------------

ExportStatus = Literal["ready", "not-installed", "broken", "not-applicable"]


@dataclass
class ExportStage:
    """One step of an export path: export, convert, save, load, run, compare..."""

    name: str
    ok: bool
    seconds: Optional[float] = None
    detail: Optional[str] = None


@dataclass
class ExportPath:
    """A tiny model taken down one export or serving path and run in its target runtime.

    ready: converted, run in the target runtime, and its output matched the source model's;
    not-installed: a package the path needs is missing (``missing``);
    broken: installed, but a stage failed (``error``, ``stages``);
    not-applicable: the target runtime cannot run on this platform (Core ML off macOS).
    A path that was not asked for (no --deep, no profile needing it) is simply absent.
    """

    name: str  # tflite, tflite-int8, tf-serving, executorch, onnx, coreml, torchscript
    status: ExportStatus
    source: Optional[str] = None  # the framework the model came from: torch, tensorflow
    runtime: Optional[str] = None  # what ran the converted model: "ai_edge_litert 2.3.0", "onnxruntime 1.32.0"
    tools: dict[str, str] = field(default_factory=dict)  # distribution -> version used on the way
    missing: list[str] = field(default_factory=list)  # distributions that are not installed
    seconds: Optional[float] = None  # the whole path, export to compared output
    max_relative_error: Optional[float] = None  # target runtime vs the source model; null when non_finite
    tolerance: Optional[float] = None
    error: Optional[str] = None
    stages: list[ExportStage] = field(default_factory=list)
    deprecated: Optional[str] = None  # why this path (or the runtime it fell back to) is on its way out
    details: dict[str, str] = field(default_factory=dict)  # providers used, serving signature, flatc, model size
    non_finite: bool = False  # the target runtime's output held NaN or infinity (the path is broken)


# --- collectives ----------------------------------------------------------------------


@dataclass
class CollectiveProof:
    """One collective operation run across devices or processes, as a multi-GPU or multi-node job
    runs it, and checked against its exact result.

    Each rank contributes integer-valued float32 data that depends on its rank, so the sum is
    exact: ``max_abs_error`` is 0 when the collective is right. ``seconds`` is one all_reduce of
    ``bytes`` per rank, the median of several after a warm-up (for torch.distributed, the slowest
    rank's); ``algbw_gbps`` is bytes / seconds and ``busbw_gbps`` the bus bandwidth as nccl-tests
    computes it for all_reduce, algbw x 2(n-1)/n. A proof that is not ``ok`` names in ``error``
    each rank that gave a wrong sum, hung or crashed (``failed_ranks``). ``skipped`` says why it
    could not be tried (a torch built without torch.distributed): neither a pass nor a failure.
    """

    framework: str  # torch, jax, tensorflow
    backend: str  # gloo, nccl, rccl (torch.distributed); xla:cpu, xla:cuda (JAX); ReductionToOneDevice, NcclAllReduce
    world_size: int  # ranks (torch) or devices (JAX, TensorFlow) taking part
    ok: bool
    operation: str = "all_reduce"
    devices: list[str] = field(default_factory=list)  # each rank's device, in rank order
    dtype: str = "float32"
    bytes: Optional[int] = None  # each rank's buffer: the size nccl-tests reports
    max_abs_error: Optional[float] = None
    seconds: Optional[float] = None
    algbw_gbps: Optional[float] = None
    busbw_gbps: Optional[float] = None
    error: Optional[str] = None
    failed_ranks: list[int] = field(default_factory=list)
    skipped: Optional[str] = None
    scope: Literal["local", "cluster"] = "local"  # local: processes or devices of this machine
    nodes: list[str] = field(default_factory=list)  # the hosts of a cluster proof's ranks; empty for a local one

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped


# --- the snapshot --------------------------------------------------------------------


@dataclass
class Snapshot:
    schema_version: str
    generated_at: str
    auditor_version: str
    machine: MachineFacts
    accelerators: AcceleratorFacts
    frameworks: dict[str, FrameworkFacts]
    packages: dict[str, PackageFacts]
    exports: dict[str, ExportPath] = field(default_factory=dict)  # by path name; filled under --deep
    probes: list[ProbeRun] = field(default_factory=list)
    mode: Literal["full", "quick", "deep"] = "full"
    unreadable_distributions: list[UnreadableDistribution] = field(default_factory=list)
    auditor_python: Optional[PythonFacts] = None  # the auditor's own interpreter; machine.python is the audited one
    collectives: Optional[list[CollectiveProof]] = None  # None: not run (run under --deep)

    def probe(self, name: str) -> Optional[ProbeRun]:
        return next((run for run in self.probes if run.name == name), None)

    def audits_another_python(self) -> Optional[bool]:
        """Whether the audited interpreter is not the one the auditor ran in; None when unknown
        (a snapshot written before 1.7, or a failed python probe)."""
        audited, own = self.machine.python, self.auditor_python
        if audited is None or own is None:
            return None
        return (audited.executable, audited.prefix) != (own.executable, own.prefix)


def to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def reject_non_finite(name: str) -> None:
    """json.loads' parse_constant: facts, reports and snapshots are strict JSON (RFC 8259),
    which has no NaN or Infinity; Python's json would otherwise read them as floats."""
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


class SnapshotFormatError(ValueError):
    """A snapshot file does not have the shape this version of the auditor reads."""


def from_dict(cls: type, data: Any, where: str = "$") -> Any:
    """Rebuild a dataclass tree from plain JSON data, checking types as it goes.

    Unknown keys are ignored so snapshots written by a newer minor version still load.
    """
    hints = typing.get_type_hints(cls)
    if not isinstance(data, dict):
        raise SnapshotFormatError(f"{where}: expected an object, got {type(data).__name__}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
            pattern = f.metadata.get("pattern")
            if pattern is not None and not pattern.fullmatch(kwargs[f.name]):
                raise SnapshotFormatError(f"{where}.{f.name}: expected a value such as 3.11.7, got {data[f.name]!r}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SnapshotFormatError(f"{where}: missing required key '{f.name}'")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if value is None:
        raise SnapshotFormatError(f"{where}: must not be null")
    if origin is Literal:
        if value not in args:
            raise SnapshotFormatError(f"{where}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SnapshotFormatError(f"{where}: expected a list")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SnapshotFormatError(f"{where}: expected an object")
        return {key: _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise SnapshotFormatError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
    return value
