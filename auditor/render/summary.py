"""Short phrases shared by the human-readable formats (text and Markdown).

These only format values the report already holds; they decide nothing.
"""

from __future__ import annotations

from auditor.facts import CpuFacts, FrameworkFacts, HostFacts, MemoryFacts, PythonFacts, Snapshot
from auditor.decisions.readiness import GoalRecommendation, Readiness, Recommendation
from auditor.names import DISPLAY_NAMES
from auditor.peaks import SHORT_DTYPES, percent

GIB = 1024**3
ML_CPU_FEATURES = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "neon", "sve", "bf16", "i8mm",
                   "altivec", "rvv")



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


def audited_python(snapshot: Snapshot) -> str:
    """ "Python 3.8.18 at /home/ada/proj/.venv/bin/python": the interpreter the report is about."""
    python = snapshot.machine.python
    return f"{python.implementation} {python.version} at {python.executable}" if python else "Python unknown"


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
    architecture = cpu.architecture or "unknown architecture"
    text = f"{cpu.model or cpu.vendor or 'unknown model'} ({architecture}); {cores}; ISA: {features or 'none of note'}"
    return text + (f"; lacks {missing}" if missing else "")


def memory_line(memory: MemoryFacts | None) -> str:
    if not memory:
        return "unknown (memory probe failed)"
    limit = f"cgroup limit {gib(memory.cgroup_limit_bytes)}" if memory.cgroup_limit_bytes else "no cgroup limit"
    return (f"{gib(memory.total_bytes)} total, {gib(memory.available_bytes)} available, {limit}, "
            f"swap {gib(memory.swap_total_bytes)}, /dev/shm {gib(memory.shm_bytes)}")


def accelerator_lines(snapshot: Snapshot) -> list[tuple[str, str]]:
    """(label, description) rows: the bus, each vendor's driver view, then what each framework sees."""
    acc = snapshot.accelerators
    rows = [(f"PCI {d.address}", f"{d.vendor or d.vendor_id} {d.kind} {d.device_id}, driver {d.driver or 'none'}")
            for d in acc.pci]
    if acc.nvidia_kernel:
        rows.append(("NVIDIA kernel", f"driver {acc.nvidia_kernel.driver_version or '?'}; device nodes: "
                                      f"{' '.join(acc.nvidia_kernel.device_nodes) or 'none'}"))
    nvidia, run = acc.nvidia, snapshot.probe("nvidia")
    if nvidia:
        via = f" via nvidia-smi (NVML: {nvidia.nvml_error})" if nvidia.source == "nvidia-smi" else ""
        rows.append(("NVIDIA driver", f"{nvidia.driver_version}, supports CUDA up to {nvidia.cuda_driver_version or '?'}{via}"))
        rows += [(f"GPU {gpu.index}", _nvidia_gpu(gpu)) for gpu in nvidia.gpus]
    elif run:
        rows.append(("NVIDIA", f"none: {run.reason}" if run.status == "absent" else f"{run.status}: {run.reason}"))
    if acc.amd:
        rows.append(("AMD ROCm", f"ROCm {acc.amd.rocm_version or 'not installed'}; /dev/kfd "
                                 f"{'present' if acc.amd.kfd_present else 'missing'}; render nodes: "
                                 f"{' '.join(acc.amd.render_nodes) or 'none'}"))
        rows += [(f"AMD GPU {gpu.node}", f"{gpu.name or '?'} {gpu.gfx_target or ''}, {gib(gpu.vram_bytes)}"
                  + (f", {gpu.compute_units} CUs" if gpu.compute_units else "")
                  + (f", bus {gpu.pci_address}" if gpu.pci_address else "")
                  + (f", partition {gpu.partition}" if gpu.partition is not None else "")) for gpu in acc.amd.gpus]
    if acc.amd_smi:
        rows.append(("AMD SMI", f"driver {acc.amd_smi.driver_version or '?'}"))
        rows += [(f"AMD SMI GPU {gpu.index}", ", ".join(str(p) for p in (
            gpu.name, gpu.gfx_target, gib(gpu.vram_bytes) if gpu.vram_bytes else None,
            f"{gpu.compute_units} CUs" if gpu.compute_units else None, gpu.pci_address,
            f"errors: {'; '.join(gpu.errors)}" if gpu.errors else None) if p)) for gpu in acc.amd_smi.gpus]
    if acc.tpu:
        rows.append(("TPU", f"{acc.tpu.accelerator_type or 'type unknown'}, {acc.tpu.chip_count or '?'} chip(s); "
                            f"signals: {'; '.join(acc.tpu.signals)}"))
    if acc.apple:
        rows.append(("Apple", f"macOS {acc.apple.macos_version}, {'arm64' if acc.apple.arm64 else 'x86_64'}, MPS "
                              f"{'eligible' if acc.apple.mps_eligible else 'not eligible'}; tensorflow-metal "
                              f"{acc.apple.tensorflow_metal or 'not installed'}"))
    if acc.cuda_toolkit:
        toolkit = acc.cuda_toolkit
        rows.append(("CUDA toolkit", f"nvcc {toolkit.nvcc_version or 'not found'}"
                                     + (f" ({toolkit.nvcc_path})" if toolkit.nvcc_path else "")
                                     + "; system libraries: " + (", ".join(sorted(toolkit.libraries)) or "none")
                                     + " (frameworks bring their own CUDA)"))
    if acc.visibility:
        rows.append(("Visibility", " ".join(f"{k}={v}" for k, v in acc.visibility.items())))
    for fw in snapshot.frameworks.values():
        if fw.probe.status == "ok":
            seen = [f"{d.id} {d.name or ''}".strip() + (f" (NVML GPU {d.nvml_index})" if d.nvml_index is not None else "")
                    for d in fw.devices or () if d.kind != "cpu"]
            errors = [f"{backend}: {error}" for backend, error in fw.runtime.backend_errors.items()] if fw.runtime else []
            unlisted = ["devices not listed (unknown)"] if fw.devices is None else []
            rows.append((f"{DISPLAY_NAMES.get(fw.name, fw.name)} sees", "; ".join(unlisted + seen + errors) or "CPU only"))
    return rows


def _nvidia_gpu(gpu) -> str:
    parts = [gpu.name or "unknown", f"cc {gpu.compute_capability}" if gpu.compute_capability else None,
             gpu.architecture, gib(gpu.memory_total_bytes) if gpu.memory_total_bytes else None,
             f"bus {gpu.pci_bus_id}" if gpu.pci_bus_id else None]
    if gpu.pcie_link_gen_current and gpu.pcie_link_width_current:
        link = f"PCIe gen{gpu.pcie_link_gen_current} x{gpu.pcie_link_width_current}"
        if gpu.pcie_link_gen_max and gpu.pcie_link_width_max and (gpu.pcie_link_gen_max, gpu.pcie_link_width_max) != (
                gpu.pcie_link_gen_current, gpu.pcie_link_width_current):
            link += f" (max gen{gpu.pcie_link_gen_max} x{gpu.pcie_link_width_max})"
        parts.append(link)
    if gpu.clock_event_reasons:
        parts.append(f"clock events: {', '.join(gpu.clock_event_reasons)}")
    if gpu.mig_mode_current:
        instances = "instances not listed" if gpu.mig_instances is None else f"{len(gpu.mig_instances)} instance(s)"
        profiles = sorted({mig.profile for mig in gpu.mig_instances or () if mig.profile})
        parts.append(f"MIG on, {instances}" + (f" ({', '.join(profiles)})" if profiles else ""))
    elif gpu.mig_mode_pending:
        parts.append("MIG pending (reset needed)")
    if gpu.errors:
        parts.append(f"errors: {'; '.join(gpu.errors)}")
    return ", ".join(p for p in parts if p)


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


RESULT_COLUMN = "Error of tolerance"  # "6.6e-07 of 2e-03": passed; otherwise why not
PROOF_COLUMNS = ("Device", "Dtype", "Mode", "Workloads", RESULT_COLUMN, "GFLOP/s")


def proof_rows(fw: FrameworkFacts) -> list[tuple[str, ...]]:
    """One row per device, dtype and mode (eager or a compiler) whose workloads all passed,
    then one per failed or deferred proof."""
    if fw.proofs is None:
        return [("-", "-", "-", "-", "not run: this snapshot records no proof", "-")] if fw.probe.status == "ok" else []
    passed: dict[tuple, list] = {}
    others = []
    for proof in fw.proofs or ():
        # JAX has no eager mode: everything it runs is jit-compiled by XLA.
        mode = proof.compiler or ("jit" if fw.name == "jax" else "eager")
        workload = proof.workload or "matmul"
        if proof.skipped:  # "needs --deep (why)": the full reason stays in the JSON report
            others.append((proof.device, proof.dtype, mode, workload, proof.skipped.split(" (")[0], "-"))
        elif proof.failed:
            others.append((proof.device, proof.dtype, mode, workload, f"FAILED: {proof.error}", "-"))
        else:
            passed.setdefault((proof.device, proof.dtype, mode), []).append(proof)
    rows = []
    for (device, dtype, mode), proofs in passed.items():
        workloads = ", ".join(p.workload or "matmul" for p in proofs)
        worst = max(proofs, key=lambda p: p.max_relative_error or 0.0)
        tolerance = f" of {worst.tolerance:.0e}" if worst.tolerance else ""
        speed = next((f"{p.gflops:,.0f}" for p in proofs if p.gflops), "-")
        rows.append((device, dtype, mode, workloads, f"{worst.max_relative_error or 0.0:.1e}{tolerance}", speed))
    return rows + others


EXPORT_COLUMNS = ("Path", "Status", "Detail")
def exports_not_checked(recommendation: Recommendation) -> str:
    return (f"Not checked in this audit: `{recommendation.audit_command} --deep` converts a tiny model down each "
            "export and serving path and runs it in the target runtime.")


def export_rows(readiness: Readiness) -> list[tuple[str, str, str]]:
    return [(f"{e.path}: {e.title}", e.status, e.detail + (f"; install: {e.command}" if e.command else ""))
            for e in readiness.exports]


def framework_status(fw: FrameworkFacts) -> str:
    run = fw.probe
    return run.status if run.status in ("ok", "skipped") else f"{run.status}: {run.reason}"


# How each state of the first screen is marked, in flutter doctor's manner.
STATE_MARKS = {"ready": "[✓]", "warning": "[!]", "not-ready": "[✗]", "not-checked": "[?]", "not-applicable": "[-]"}
STATE_WORDS = {"ready": "ready", "warning": "warning", "not-ready": "not ready", "not-checked": "not checked",
               "not-applicable": "not applicable"}


def throughput_rows(figures) -> tuple[list[tuple[str, str]], list[str]]:
    """(one row per timed matmul: "PyTorch fp32 on cpu", "230 of 269 GFLOP/s (86%); 2 threads, timed
    alone"; then what each peak rests on, once: "cpu fp32: Intel Xeon, 2 cores x 2.10 GHz x 64 ...")."""
    rows, bases = [], {}
    for figure in figures:
        dtype = SHORT_DTYPES.get(figure.dtype, figure.dtype) + (f" {figure.compiler}" if figure.compiler else "")
        scale, unit = (1000, "TFLOP/s") if figure.gflops >= 1000 else (1, "GFLOP/s")
        achieved = _figure(figure.gflops / scale)
        speed = (f"{achieved} of {_figure(figure.peak.gflops / scale)} {unit} ({percent(figure.fraction)})"
                 if figure.peak else f"{achieved} {unit} (peak unknown)")
        how = [f"{figure.threads} thread{'s' if figure.threads != 1 else ''}" if figure.threads else None,
               {True: "timed alone", False: "timed while other probes ran"}.get(figure.measured_alone)]
        rows.append((f"{DISPLAY_NAMES.get(figure.framework, figure.framework)} {dtype} on {figure.device}",
                     speed + ("; " + ", ".join(h for h in how if h) if any(how) else "")))
        if figure.peak:
            basis = figure.peak.device if figure.peak.rate in figure.peak.device else \
                f"{figure.peak.device} ({figure.peak.rate})"
            bases.setdefault(basis, SHORT_DTYPES.get(figure.dtype, figure.dtype))
    return rows, [f"{dtype}: {basis}" for basis, dtype in bases.items()]


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def area_fact(line) -> str:
    """An area line's fact, with the command that checks or fixes it."""
    return line.fact + (f" · `{line.command}`" if line.command else "")


def step_text(step) -> str:
    """'Install it: `pip install torch` (for research, ci-cpu)' — the action, then whom it serves."""
    goals = f" (for {', '.join(step.goals)})" if step.goals else ""
    return f"{step.action}{goals}"


def requirement_counts(verdict) -> str:
    """'2 failed, 1 warning(s), 5 passed, 1 not checked, 1 not applicable': the profile's requirements
    and the counted checks that found something; a check that found nothing is no requirement met."""
    counts = [f"{verdict.count('fail')} failed", f"{verdict.count('warn')} warning(s)", f"{verdict.count('pass')} passed"]
    counts += [f"{verdict.count(status)} {STATE_WORDS[state]}" for status, state in
               (("not-checked", "not-checked"), ("not-applicable", "not-applicable")) if verdict.count(status)]
    return ", ".join(counts)


def goals_left_out_line(recommendation: Recommendation) -> str:
    """ "Not asked here: tpu (no TPU signal here), apple-silicon (not Apple silicon); ..." """
    goals = ", ".join(f"{goal} ({why})" for goal, why in recommendation.goals_left_out.items())
    return f"Not asked here: {goals}; `{recommendation.audit_command} --goal all` asks every goal, `--goal NAME` one."


def goal_headline(goal: GoalRecommendation) -> str:
    """'research: PyTorch on cpu (ready)' / 'tpu: JAX, once the goal's requirements are met (not ready)'"""
    name = DISPLAY_NAMES.get(goal.framework, goal.framework) if goal.framework else "no framework"
    where = f" on {goal.device}" if goal.device else ""
    path = f" via {goal.path}" if goal.path else ""
    return f"{goal.goal}: {name}{where}{path} ({STATE_WORDS[goal.status]})"
