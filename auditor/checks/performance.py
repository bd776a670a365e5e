"""Performance: a device whose timed matmul falls far below its peak, and the causes the facts show."""

from __future__ import annotations

import math
from typing import Optional

from auditor.checks.base import Hit, check
from auditor.facts import CpuFacts, Snapshot
from auditor.peaks import ThroughputFigure, percent, throughput_figures

# Below these fractions of its peak a figure is far off, per kind of peak. The accelerators' product is
# 4096x4096: cuBLAS and rocBLAS reach 50-90% of the dense peak on a healthy GPU at that size, so under a
# quarter means halved clocks or power, not a size effect. The CPUs' product is 512x512 against a peak at
# the highest announced clock: this 2-core VM reaches 40% (TensorFlow's XLA) to over 100% (torch, JAX: its
# "cpu MHz" is below the host's turbo clock) of its AVX-512 peak when timed alone, but many-core servers
# lose to threading and packing at that size and run AVX-512 below their turbo clock, so only a tenth
# catches an unvectorised BLAS or threads fighting a quota without flagging healthy large machines. AMX's
# tile peak is not judged: 512x512 reaches 10-25% of it even when AMX runs (500-1,100 of 4,301 GFLOP/s
# here, 3% with AMX turned off), and less on more cores.
FAR_BELOW = {"accelerator": 0.25, "cpu-vector": 0.10}


@check("PRF001", "throughput-far-below-peak", "warning",
       "A device's timed matmul reaches only a small fraction of its hardware's peak.",
       "Each compute proof times a larger matmul (4096x4096 on accelerators, 512x512 on CPUs) and the "
       "figure is set beside the device's peak for that dtype from a sourced table: dense tensor-core rates "
       "for GPUs (what each framework's float32 really runs on: CUDA cores for torch, TF32 for TensorFlow "
       "and JAX), cores x clock x FLOPs per cycle for CPUs, an upper bound. A figure below a quarter of an "
       "accelerator's peak, or a tenth of a CPU's vector peak, timed while the machine was otherwise idle, "
       "means the device is held back: a power limit set below the board's default, clocks held down "
       "(thermal or power slowdown), a degraded PCIe link, or a CPU framework running more threads than its "
       "cgroup quota allows, or fewer than its cores. The finding names the causes the facts show, or says "
       "that none shows. Not judged: figures timed while other probes ran, unknown models, MIG devices, AMX's "
       "tile peak (shown, but a 512x512 product cannot approach it), and CPU facts read from a --root tree, "
       "which describe another machine than the one the proofs ran on.",
       fix="Remove the cause the finding names: restore the default power limit (`sudo nvidia-smi -i <index> -pl "
           "<default watts>`), clear the cooling or power problem holding the clocks down, reseat a GPU whose PCIe "
           "link trained narrow, or size a CPU framework's threads to its usable cores (`torch.set_num_threads(N)`, "
           "`OMP_NUM_THREADS=N`); then run the audit again.",
       example="torch cuda:0 runs far below its peak: bf16 at 18%\n"
               "GPU 0: power limit 300 W, below its default 700 W (nvml)")
def throughput_far_below_peak(snapshot: Snapshot):
    slow: dict[tuple[str, str], list[ThroughputFigure]] = {}
    for figure in throughput_figures(snapshot):
        threshold = FAR_BELOW.get(figure.peak.engine) if figure.peak else None
        if threshold is not None and figure.measured_alone is not False and figure.fraction < threshold:
            slow.setdefault((figure.framework, figure.device), []).append(figure)
    for (framework, device), figures in slow.items():
        causes = _causes(snapshot, figures[0])
        evidence = [f"{framework} {device}: {figure.describe()}, below {percent(FAR_BELOW[figure.peak.engine])} "
                    f"of its {figure.peak.rate} (knowledge: peak-flops, {figure.peak.source})" for figure in figures]
        evidence.append(_timing(figures[0]))
        evidence += [cause for cause, _ in causes] or [_no_cause(figures[0])]
        fixes = [fix for _, fix in causes if fix]
        yield Hit(f"{framework} {device} runs far below its peak: "
                  + ", ".join(f"{figure.dtype_label} at {percent(figure.fraction)}" for figure in figures),
                  evidence, " ".join(fixes) if fixes else _look_further(figures[0]), framework=framework)


def _timing(figure: ThroughputFigure) -> str:
    alone = {True: "with the machine to itself", None: "without a record of whether other work ran"}
    threads = f", {figure.threads} thread(s)" if figure.threads else ""
    return f"timed {alone[figure.measured_alone]}{threads}"


def _causes(snapshot: Snapshot, figure: ThroughputFigure) -> list[tuple[str, Optional[str]]]:
    """(evidence, fix) for each likely cause the facts show."""
    if figure.kind == "cpu":
        return _cpu_causes(snapshot.machine.cpu, figure)
    nvidia = snapshot.accelerators.nvidia
    gpu = next((gpu for gpu in nvidia.gpus if gpu.index == figure.nvml_index), None) if nvidia else None
    if gpu is None:
        return []
    source = nvidia.source
    causes = []
    if gpu.power_limit_watts and gpu.default_power_limit_watts and gpu.power_limit_watts < gpu.default_power_limit_watts:
        causes.append((f"GPU {gpu.index}: power limit {gpu.power_limit_watts:g} W, below its default "
                       f"{gpu.default_power_limit_watts:g} W ({source})",
                       f"Restore the default power limit: `sudo nvidia-smi -i {gpu.index} -pl "
                       f"{gpu.default_power_limit_watts:g}`."))
    reasons = [reason for reason in gpu.clock_event_reasons or () if reason != "gpu_idle"]
    if reasons:
        reset = (f" Reset the application clocks an administrator set: `sudo nvidia-smi -i {gpu.index} -rac`."
                 if "applications_clocks_setting" in reasons else "")
        causes.append((f"GPU {gpu.index}: clocks held down by {', '.join(reasons)} (clock-event reasons, {source})",
                       f"See why the clocks are held down: `nvidia-smi -q -i {gpu.index} -d PERFORMANCE,TEMPERATURE,"
                       f"POWER`; clear the cooling and check the power cables.{reset}"))
    width, widest = gpu.pcie_link_width_current, gpu.pcie_link_width_max
    if width and widest and width < widest:
        causes.append((f"GPU {gpu.index}: PCIe link trained at x{width} of x{widest}, which slows every transfer "
                       f"to and from it ({source})",
                       f"Reseat GPU {gpu.index}, or move it to a slot wired x{widest}."))
    return causes


def _cpu_causes(cpu: Optional[CpuFacts], figure: ThroughputFigure) -> list[tuple[str, Optional[str]]]:
    threads, cores = figure.threads, figure.peak.cores
    if cpu is None or not threads:
        return []
    if cpu.cgroup_cpu_quota and threads > cpu.cgroup_cpu_quota:
        allowed = max(1, math.floor(cpu.cgroup_cpu_quota))
        return [(f"{threads} threads against a cgroup quota of {cpu.cgroup_cpu_quota:g} CPUs: they queue for CPU "
                 f"time ({cpu.sources.get('cgroup_cpu_quota', 'cgroup')})", _threads_fix(figure.framework, allowed))]
    if cores and threads < cores:
        return [(f"{threads} thread(s) for {cores} usable cores", _threads_fix(figure.framework, cores))]
    return []


def _threads_fix(framework: str, count: int) -> str:
    calls = {"torch": f"`torch.set_num_threads({count})`",
             "tensorflow": f"`tf.config.threading.set_intra_op_parallelism_threads({count})`"}
    own = f"{calls[framework]}, or " if framework in calls else ""
    return f"Run {framework} with {count} threads: {own}`OMP_NUM_THREADS={count}` in its environment."


def _no_cause(figure: ThroughputFigure) -> str:
    if figure.kind == "cpu":
        return ("no cause shows in the facts: the threads fit the cores and any cgroup quota"
                if figure.threads else "no cause shows in the facts (the thread count was not recorded)")
    if figure.nvml_index is None:
        return "no cause shows in the facts: the device's power, clocks and link are not known here"
    return "no cause shows in the facts: power limit at its default, no clock-event reason, the PCIe link at full width"


def _look_further(figure: ThroughputFigure) -> str:
    where = "the CPU" if figure.kind == "cpu" else "the device"
    return (f"Run the audit again with nothing else using {where}; if the figure stays low, time the framework's "
            "own matmul benchmark and look for another process, a debug or unoptimised build, or a BLAS without "
            "vector kernels.")
