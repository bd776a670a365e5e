"""Short phrases shared by the human-readable formats (text and Markdown).

These only format values the report already holds; they decide nothing.
"""

from __future__ import annotations

from auditor.facts import CpuFacts, FrameworkFacts, HostFacts, MemoryFacts, PythonFacts, Snapshot
from auditor.readiness import DISPLAY_NAMES

GIB = 1024**3
ML_CPU_FEATURES = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "neon", "sve", "bf16", "i8mm")



def gib(value: int | None) -> str:
    return "?" if value is None else f"{value / GIB:.1f} GiB"


def host_line(host: HostFacts | None) -> str:
    if not host:
        return "unknown (host probe failed)"
    parts = [host.os_release or host.os, f"kernel {host.kernel}" if host.kernel else None, host.libc, host.architecture]
    if host.container:
        parts.append(f"{host.container} container")
    if host.virtualization:
        parts.append(f"virtualised ({host.virtualization})")
    if host.ci:
        parts.append(f"CI: {host.ci}")
    return ", ".join(p for p in parts if p)


def python_line(python: PythonFacts | None) -> str:
    if not python:
        return "unknown (python probe failed)"
    where = f"{python.environment} {python.environment_path}" if python.environment_path else python.environment
    return f"{python.implementation} {python.version} ({where}) {python.executable}"


def cpu_line(cpu: CpuFacts | None) -> str:
    if not cpu:
        return "unknown (cpu probe failed)"
    cores = f"{cpu.usable_cpus} usable of {cpu.logical_cpus} logical CPUs"
    if cpu.physical_cores:
        cores += f", {cpu.physical_cores} physical cores"
    if cpu.cgroup_cpu_quota is not None:
        cores += f", cgroup quota {cpu.cgroup_cpu_quota:g}"
    features = " ".join(name.upper() for name in ML_CPU_FEATURES if cpu.features.get(name))
    missing = " ".join(name.upper() for name in ("avx", "avx2") if cpu.features.get(name) is False)
    text = f"{cpu.model or cpu.vendor or 'unknown model'} ({cpu.architecture}); {cores}; ISA: {features or 'none of note'}"
    return text + (f"; lacks {missing}" if missing else "")


def memory_line(memory: MemoryFacts | None) -> str:
    if not memory:
        return "unknown (memory probe failed)"
    limit = f"cgroup limit {gib(memory.cgroup_limit_bytes)}" if memory.cgroup_limit_bytes else "no cgroup limit"
    return (f"{gib(memory.total_bytes)} total, {gib(memory.available_bytes)} available, {limit}, "
            f"swap {gib(memory.swap_total_bytes)}, /dev/shm {gib(memory.shm_bytes)}")


def accelerator_lines(snapshot: Snapshot) -> list[tuple[str, str]]:
    """(label, description) rows: what the driver sees, then what each framework sees."""
    rows = []
    nvidia = snapshot.accelerators.nvidia
    nvml = snapshot.probe("nvml")
    if nvidia:
        rows.append(("NVIDIA driver", f"{nvidia.driver_version} (supports CUDA up to {nvidia.cuda_driver_version})"))
        rows += [(f"GPU {gpu.index}", f"{gpu.name}, compute capability {gpu.compute_capability}, {gib(gpu.memory_total_bytes)}")
                 for gpu in nvidia.gpus]
    elif nvml:
        rows.append(("NVIDIA", f"none: {nvml.reason or nvml.status}"))
    for fw in snapshot.frameworks.values():
        accelerators = [d for d in fw.devices if d.kind != "cpu"]
        if fw.probe.status == "ok":
            seen = ", ".join(f"{d.id} {d.name or ''}".strip() for d in accelerators) or "CPU only"
            rows.append((f"{DISPLAY_NAMES.get(fw.name, fw.name)} sees", seen))
    return rows


def build_line(fw: FrameworkFacts) -> str:
    if not fw.build:
        return "-"
    build = fw.build
    parts = [build.variant]
    if build.cuda_version:
        parts.append(f"CUDA {build.cuda_version}")
    if build.cudnn_version:
        parts.append(f"cuDNN {build.cudnn_version}")
    if build.rocm_version:
        parts.append(f"ROCm {build.rocm_version}")
    if build.compiled_architectures:
        parts.append(" ".join(build.compiled_architectures))
    if build.cpu_capability:
        parts.append(f"CPU {build.cpu_capability}")
    parts += [name for name, on in (("MKL", build.mkl), ("oneDNN", build.onednn), ("OpenMP", build.openmp)) if on]
    return ", ".join(parts)


def proof_lines(fw: FrameworkFacts) -> list[str]:
    lines = []
    for proof in fw.proofs:
        if proof.ok:
            lines.append(f"{proof.device}: {proof.operation} {proof.dtype} ok, error {proof.max_relative_error:.1e}, "
                         f"{proof.seconds * 1000:.2f} ms")
        else:
            lines.append(f"{proof.device}: {proof.operation} {proof.dtype} FAILED: {proof.error}")
    return lines


def framework_status(fw: FrameworkFacts) -> str:
    run = fw.probe
    return run.status if run.status in ("ok", "skipped") else f"{run.status}: {run.reason}"
