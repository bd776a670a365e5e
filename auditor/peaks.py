"""Each timed matmul beside the peak of the hardware it ran on.

A compute proof records the throughput a framework reached on one device and dtype
(``ComputeProof.gflops``). This module finds the hardware behind the framework's device (an NVIDIA GPU
by its NVML name, an AMD GPU by its gfx target and compute units, the CPU by its features, cores and
clock) and that hardware's peak for the dtype, from knowledge peak-flops. A model or dtype the table
does not know has no peak: nothing here guesses. Checks and renderers share it; it reads facts and
knowledge only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from auditor import knowledge
from auditor.facts import AmdGpu, ComputeProof, CpuFacts, FrameworkDevice, FrameworkFacts, NvidiaGpu, Snapshot

SHORT_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
# The environment variables that renumber ROCm devices: with one set, device N is no longer KFD GPU N.
_AMD_RENUMBERING = ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")


@dataclass(frozen=True)
class Peak:
    """The most a device can do in one dtype, and what that figure rests on."""

    # "H100 SXM"; a CPU's says what was assumed: "Intel Xeon, 2 cores x 2.10 GHz x 64 FLOP/cycle (AVX-512, 2 FMA units)"
    device: str
    dtype: str
    gflops: float
    rate: str  # which of the device's units: "dense bf16 tensor cores", "fp32 CUDA cores", "AVX-512, 2 FMA units"
    engine: str  # "accelerator", "cpu-vector" (SIMD FMA units) or "cpu-matrix" (a tile engine: AMX)
    source: str  # the knowledge row's source
    cores: Optional[int] = None  # a CPU peak's cores: min(physical cores, usable CPUs)


@dataclass(frozen=True)
class ThroughputFigure:
    """One timed matmul: what a framework reached on a device, beside that device's peak (None: unknown)."""

    framework: str
    device: str  # the framework's own device id: "cuda:0", "cpu", "/device:GPU:0"
    kind: Optional[str]  # the device's kind (cpu, cuda, rocm, gpu...); None when the framework did not list it
    dtype: str
    compiler: Optional[str]  # None for eager; "xla"
    gflops: float
    peak: Optional[Peak]
    fraction: Optional[float]  # gflops / peak.gflops; None without a peak
    threads: Optional[int]
    measured_alone: Optional[bool]
    nvml_index: Optional[int] = None  # the NVML GPU it ran on, when known (NvidiaGpu.index)

    @property
    def dtype_label(self) -> str:
        """ "bf16", "fp32 (xla)": the dtype, and the compiler of a compiled figure."""
        return SHORT_DTYPES.get(self.dtype, self.dtype) + (f" ({self.compiler})" if self.compiler else "")

    def describe(self) -> str:
        """ "H100 SXM, bf16: 610 of 989 TFLOP/s (62%)"; without a peak: "cuda:0, bf16: 610 TFLOP/s (peak unknown)"."""
        dtype = self.dtype_label
        # TFLOP/s once the achieved figure reaches a thousand GFLOP/s; the peak in the same unit.
        scale, unit = (1000, "TFLOP/s") if self.gflops >= 1000 else (1, "GFLOP/s")
        if self.peak is None:
            return f"{self.device}, {dtype}: {_number(self.gflops / scale)} {unit} (peak unknown)"
        return (f"{self.peak.device}, {dtype}: {_number(self.gflops / scale)} of {_number(self.peak.gflops / scale)} "
                f"{unit} ({percent(self.fraction)})")


def percent(fraction: float) -> str:
    """ "62%", "7.5%", "0.26%": two significant digits below 10%."""
    return f"{fraction * 100:.0f}%" if fraction >= 0.1 else f"{fraction * 100:.2g}%"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def throughput_figures(snapshot: Snapshot) -> list[ThroughputFigure]:
    """Every timed matmul of the snapshot, eager and compiled, each beside its device's peak."""
    figures = []
    for name, framework in snapshot.frameworks.items():
        for proof in framework.proofs or ():
            if not proof.gflops:
                continue
            device = _device(framework, proof.device)
            gpu = _nvidia_gpu_of(snapshot, device) if device and device.kind in ("cuda", "gpu") else None
            peak = peak_for(snapshot, name, proof)
            figures.append(ThroughputFigure(name, proof.device, device.kind if device else None, proof.dtype,
                                            proof.compiler, proof.gflops, peak,
                                            round(proof.gflops / peak.gflops, 4) if peak else None,
                                            proof.threads, proof.measured_alone, gpu.index if gpu else None))
    return figures


def peak_for(snapshot: Snapshot, framework_name: str, proof: ComputeProof) -> Optional[Peak]:
    """The peak of the hardware a proof ran on, in the proof's dtype; None when it is not known."""
    framework = snapshot.frameworks.get(framework_name)
    device = _device(framework, proof.device) if framework else None
    if device is None:
        return None
    if device.kind in ("cuda", "gpu"):
        return _nvidia_peak(snapshot, framework_name, device, proof.dtype)
    if device.kind == "rocm":
        return _amd_peak(snapshot, device, proof.dtype)
    if device.kind == "cpu":
        return _cpu_peak(snapshot.machine.cpu, framework, proof.dtype)
    return None


def _device(framework: FrameworkFacts, device_id: str) -> Optional[FrameworkDevice]:
    return next((device for device in framework.devices or () if device.id == device_id), None)


# --- NVIDIA ---------------------------------------------------------------------------


def _nvidia_gpu_of(snapshot: Snapshot, device: FrameworkDevice) -> Optional[NvidiaGpu]:
    """The NVML GPU a framework device is: the one its UUID matched; without that, the only NVML GPU
    of its name. None when it cannot be told (eight GPUs of one name, a framework that gives no UUID)."""
    nvidia = snapshot.accelerators.nvidia
    gpus = nvidia.gpus if nvidia else []
    if device.nvml_index is not None:
        return next((gpu for gpu in gpus if gpu.index == device.nvml_index), None)
    named = [gpu for gpu in gpus if device.name and gpu.name == device.name]
    return named[0] if len(named) == 1 else None


def _nvidia_peak(snapshot: Snapshot, framework_name: str, device: FrameworkDevice, dtype: str) -> Optional[Peak]:
    gpu = _nvidia_gpu_of(snapshot, device)
    nvidia = snapshot.accelerators.nvidia
    # A MIG device has a share of the SMs that the table does not give; a device not told apart from
    # GPUs in MIG mode may be one.
    candidates = [gpu] if gpu else nvidia.gpus if nvidia else []
    if any(candidate.mig_mode_current for candidate in candidates):
        return None
    model = knowledge.nvidia_gpu_peak(gpu.name if gpu and gpu.name else device.name)
    if model is None:
        return None
    key, rate = dtype, f"dense {SHORT_DTYPES.get(dtype, dtype)} tensor cores"
    if dtype == "float32":
        # torch runs float32 matmuls on the CUDA cores by default (allow_tf32 is False), TensorFlow and
        # JAX on TF32 tensor cores where the GPU has them: each is judged against what it really uses.
        uses = knowledge.float32_matmul_on_nvidia(framework_name)
        if uses is None:
            return None
        key = "tf32" if uses == "tf32" and "tf32" in model.tflops else "float32"
        rate = f"dense tf32 tensor cores, {framework_name}'s float32 default" if key == "tf32" else "fp32 CUDA cores"
    tflops = model.tflops.get(key)
    if tflops is None:
        return None
    return Peak(model.model, dtype, tflops * 1000, rate, "accelerator", model.source)


# --- AMD ------------------------------------------------------------------------------


def _amd_peak(snapshot: Snapshot, device: FrameworkDevice, dtype: str) -> Optional[Peak]:
    amd = snapshot.accelerators.amd
    nodes = amd.gpus if amd else []
    shares = [_amd_share(node, nodes, dtype) for node in nodes]
    if shares and all(share == shares[0] for share in shares):
        return shares[0]  # identical GPUs: whichever one it is, this is its peak
    # ROCm numbers its devices in KFD node order, unless a visibility variable renumbers them.
    index = re.search(r"(\d+)$", device.id)
    if index is None or int(index.group(1)) >= len(shares) or \
            any(name in snapshot.accelerators.visibility for name in _AMD_RENUMBERING):
        return None
    return shares[int(index.group(1))]


def _amd_share(node: AmdGpu, nodes: list[AmdGpu], dtype: str) -> Optional[Peak]:
    """One KFD node's peak: its device's, in proportion to the compute units it holds (one die of an
    MI250X, one CPX partition of an MI300X)."""
    if not node.compute_units or (node.partition is not None and node.pci_address is None):
        return None
    partitions = 1 if node.partition is None else \
        sum(1 for other in nodes if other.partition is not None and other.pci_address == node.pci_address)
    whole = node.compute_units * partitions
    models = knowledge.amd_gpu_peaks(node.gfx_target, whole)
    values = [model.tflops[dtype] * node.compute_units / model.compute_units
              for model in models if dtype in model.tflops]
    # Models that fit the same node but disagree leave its peak unknown.
    if not values or max(values) > min(values) * 1.01:
        return None
    name = " or ".join(model.model if whole == model.compute_units else f"one die of an {model.model}"
                       for model in models)
    if partitions > 1:
        name += f", 1 of {partitions} partitions ({node.compute_units} CUs)"
    return Peak(name, dtype, round(max(values) * 1000, 1), f"{SHORT_DTYPES.get(dtype, dtype)} matrix cores",
                "accelerator", models[0].source)


# --- CPU ------------------------------------------------------------------------------


def _read_from_this_machine(cpu: CpuFacts) -> bool:
    """Whether the CPU facts describe the machine the frameworks' proofs ran on. The proofs always run
    where the auditor runs; under --root the CPU facts are the tree's, another machine's, and the probe
    then takes the architecture from the tree, never from this machine's platform.machine() (cpu.py)."""
    return cpu.sources.get("architecture", "").startswith("platform.machine()")


def _cpu_peak(cpu: Optional[CpuFacts], framework: FrameworkFacts, dtype: str) -> Optional[Peak]:
    """cores x clock x FLOP/cycle of the best unit the CPU announces, an upper bound. Hyper-threads
    share their core's FMA units, so the cores are physical ones, as many as this process may use.
    Matmuls run in MKL, oneDNN or Eigen, which pick their instructions from the CPU itself, so the CPU's
    features decide; torch's own build capability only stands in where the features are unknown."""
    if cpu is None or not cpu.clock_mhz or not _read_from_this_machine(cpu):
        return None
    known = [count for count in (cpu.physical_cores, cpu.usable_cpus) if count]
    if not known:
        return None
    cores = min(known)
    capability = framework.build.cpu_capability if framework.name == "torch" and framework.build else None
    rate = knowledge.cpu_rate(dtype, cpu.architecture, cpu.features, cpu.model, capability)
    label_note = ""
    # A CPU whose features announce no bfloat16 unit converts bfloat16 operands and multiplies at the
    # float32 rate (Arm's "bf16" says there is a unit, of a rate the table does not give).
    if rate is None and dtype == "bfloat16" and cpu.features and not cpu.features.get("bf16"):
        rate = knowledge.cpu_rate("float32", cpu.architecture, cpu.features, cpu.model)
        label_note = "; no bfloat16 unit, the float32 rate"
    if rate is None:
        return None
    ghz = cpu.clock_mhz / 1000
    label = (f"{cpu.model or 'CPU'}, {cores} core{'s' if cores != 1 else ''} x {ghz:.2f} GHz x "
             f"{rate.flops_per_cycle} FLOP/cycle ({rate.label}{label_note})")
    return Peak(label, dtype, round(cores * ghz * rate.flops_per_cycle, 1), rate.label,
                "cpu-matrix" if rate.engine == "matrix" else "cpu-vector", rate.source, cores)
