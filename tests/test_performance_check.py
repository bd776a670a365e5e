"""PRF001 and the peaks it judges by (auditor/peaks.py, knowledge peak-flops), on snapshots built in code.

The expected peaks are the sourced figures written out by hand (H100 SXM dense bfloat16: 989.4 TFLOP/s,
half the datasheet's sparse 1,979), not read back from the table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.checks import run_checks
from auditor.facts import (AmdFacts, AmdGpu, ComputeProof, CpuFacts, FrameworkBuild, FrameworkDevice, FrameworkFacts,
                           NvidiaFacts, NvidiaGpu, ProbeRun, Snapshot)
from auditor.peaks import peak_for, throughput_figures
from auditor.probes.amd import collect_amd
from auditor.probes.base import ProbeContext
from auditor.probes.fsroot import FsRoot
from conftest import quick_snapshot
from machines import linux_machine

H100 = "NVIDIA H100 80GB HBM3"
# This machine's CPU as its probe reports it: 2 cores of a Xeon with AVX-512 and AMX, "cpu MHz : 2100.000".
XEON_FLAGS = ("fpu sse sse2 ssse3 sse4_1 sse4_2 fma avx f16c avx2 avx512f avx512bw avx512vl avx512_vnni avx512_bf16 "
              "avx512_fp16 avx_vnni amx_bf16 amx_tile amx_int8")
XEON = "".join(f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n"
               f"cpu MHz\t\t: 2100.000\nphysical id\t: 0\ncore id\t\t: {n}\nflags\t\t: {XEON_FLAGS}\n\n" for n in range(2))
KFD = Path(__file__).parent / "recorded" / "kfd"


def proof(device: str, dtype: str, gflops: float, measured_alone=True, threads=None, compiler=None) -> ComputeProof:
    return ComputeProof(device, "matmul 256x256", dtype, True, 1e-3, 5e-2, 0.001, workload="matmul", gflops=gflops,
                        compiler=compiler, threads=threads, measured_alone=measured_alone)


def framework(name: str, devices: list[FrameworkDevice], proofs: list[ComputeProof], variant="cuda") -> FrameworkFacts:
    return FrameworkFacts(name=name, probe=ProbeRun(name, "ok", None, 1.0), version="2.9.0",
                          build=FrameworkBuild(variant), devices=devices, proofs=proofs)


@pytest.fixture
def machine(fake_root) -> Snapshot:
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.frameworks = {}
    return snapshot


def with_h100(snapshot: Snapshot, *bf16_and_fp32: float, name=H100, nvml_index=0, **gpu) -> Snapshot:
    """One healthy H100 SXM at NVML index 0, and torch's figures on it (bfloat16, then float32)."""
    healthy = dict(power_limit_watts=700.0, default_power_limit_watts=700.0, clock_event_reasons=["gpu_idle"],
                   pcie_link_width_current=16, pcie_link_width_max=16)
    snapshot.accelerators.nvidia = NvidiaFacts(source="nvml", gpus=[NvidiaGpu(0, name, uuid="GPU-1", **{**healthy, **gpu})])
    device = FrameworkDevice("cuda:0", "cuda", name=name, nvml_index=nvml_index)
    proofs = [proof("cuda:0", dtype, value) for dtype, value in zip(("bfloat16", "float32"), bf16_and_fp32)]
    snapshot.frameworks["torch"] = framework("torch", [FrameworkDevice("cpu", "cpu"), device], proofs)
    return snapshot


def prf001(snapshot: Snapshot) -> list:
    return [finding for finding in run_checks(snapshot) if finding.code == "PRF001"]


# --- peaks ----------------------------------------------------------------------------


def test_h100_sxm_peaks_are_the_dense_whitepaper_figures(machine):
    snapshot = with_h100(machine, 610_000.0, 51_000.0)
    bf16, fp32 = snapshot.frameworks["torch"].proofs
    peak = peak_for(snapshot, "torch", bf16)
    assert (peak.device, peak.gflops, peak.engine) == ("H100 SXM", 989_400.0, "accelerator")
    assert peak.source.startswith("https://")
    # torch's float32 matmul runs on the CUDA cores (allow_tf32 defaults to False): 66.9, not TF32's 494.7.
    fp32_peak = peak_for(snapshot, "torch", fp32)
    assert (fp32_peak.gflops, fp32_peak.rate) == (66_900.0, "fp32 CUDA cores")
    (figure, _) = throughput_figures(snapshot)
    assert figure.describe() == "H100 SXM, bf16: 610 of 989 TFLOP/s (62%)"
    assert (figure.nvml_index, figure.fraction) == (0, 0.6165)


def test_tensorflow_float32_is_judged_against_tf32_and_torch_against_the_cuda_cores(machine):
    snapshot = with_h100(machine, 600_000.0, 40_000.0, name="NVIDIA A100-SXM4-80GB")
    tf_device = FrameworkDevice("/device:GPU:0", "gpu", name="NVIDIA A100-SXM4-80GB")  # TensorFlow gives no UUID
    snapshot.frameworks["tensorflow"] = framework("tensorflow", [tf_device], [proof("/device:GPU:0", "float32", 10_000.0)])
    by_framework = {figure.framework: figure for figure in throughput_figures(snapshot) if figure.dtype == "float32"}
    assert by_framework["tensorflow"].peak.gflops == 156_000.0  # A100 dense TF32
    assert by_framework["tensorflow"].nvml_index == 0  # the only NVML GPU of that name
    assert by_framework["torch"].peak.gflops == 19_500.0
    (finding,) = prf001(snapshot)  # TensorFlow's 10 TFLOP/s is 6.4% of TF32; torch's 40 of 19.5 is not low
    assert finding.framework == "tensorflow"
    assert finding.title == "tensorflow /device:GPU:0 runs far below its peak: fp32 at 6.4%"


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                                  "NVIDIA Fancy GPU 9000", None])
def test_an_unknown_or_near_miss_model_has_no_peak_and_no_finding(machine, name):
    snapshot = with_h100(machine, 1000.0, 100.0, name=name)
    assert [figure.peak for figure in throughput_figures(snapshot)] == [None, None]
    assert throughput_figures(snapshot)[0].describe() == "cuda:0, bf16: 1.0 TFLOP/s (peak unknown)"
    assert prf001(snapshot) == []


def test_a_gpu_in_mig_mode_has_no_peak(machine):
    snapshot = with_h100(machine, 1000.0, mig_mode_current=True)
    assert throughput_figures(snapshot)[0].peak is None and prf001(snapshot) == []


def test_real_nvidia_smi_names_match_their_rows(machine):
    for name, model in [("NVIDIA H200", "H200 SXM"), ("NVIDIA L40S", "L40S"), ("Tesla T4", "T4"),
                        ("NVIDIA GeForce RTX 2080 SUPER", "RTX 2080 SUPER"), ("Tesla V100-SXM2-16GB", "V100 SXM2"),
                        ("NVIDIA A100-SXM4-40GB", "A100 SXM"), ("NVIDIA A100 80GB PCIe", "A100 PCIe"),
                        ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA GH200 480GB", "GH200"), ("NVIDIA B200", "B200"),
                        ("NVIDIA GeForce RTX 4090", "RTX 4090"), ("A100-SXM4-80GB", "A100 SXM")]:
        snapshot = with_h100(machine, 1000.0, 1000.0, name=name)
        assert throughput_figures(snapshot)[1].peak.device == model, name  # float32: every row has it
    # Turing has no bfloat16 tensor cores: no bfloat16 peak, never a guess.
    assert throughput_figures(with_h100(machine, 1000.0, name="Tesla T4"))[0].peak is None


def with_cpu_proofs(snapshot: Snapshot) -> Snapshot:
    """torch's figures on this VM's CPU, timed alone: float32 and bfloat16 (with AMX) at 512x512."""
    snapshot.frameworks = {"torch": framework("torch", [FrameworkDevice("cpu", "cpu")],
                                              [proof("cpu", "float32", 246.8, threads=2),
                                               proof("cpu", "bfloat16", 500.1, threads=2)], variant="cpu")}
    return snapshot


def test_this_machines_cpu_peak_is_two_cores_at_2100_mhz(fake_root):
    """Through the probe, on a tree shaped like this VM's /proc/cpuinfo (no cpufreq, "cpu MHz : 2100.000"),
    taken as the machine the frameworks ran on (as the live root is)."""
    snapshot = quick_snapshot(fake_root({**linux_machine(processors=2), "/proc/cpuinfo": XEON}))
    assert throughput_figures(with_cpu_proofs(snapshot))[0].peak is None  # a tree is another machine
    snapshot.machine.cpu.sources["architecture"] = "platform.machine() (uname)"
    assert snapshot.machine.cpu.clock_mhz == 2100.0
    fp32, bf16 = throughput_figures(snapshot)
    assert fp32.peak.gflops == 2 * 2100 * 64 / 1000 == 268.8
    assert fp32.peak.device == "Intel(R) Xeon(R) Processor, 2 cores x 2.10 GHz x 64 FLOP/cycle (AVX-512, 2 FMA units)"
    assert fp32.describe().endswith("fp32: 247 of 269 GFLOP/s (92%)")
    assert (bf16.peak.gflops, bf16.peak.engine) == (2 * 2.1 * 1024, "cpu-matrix")  # AMX-BF16: 1,024 FLOP/cycle/core
    assert prf001(snapshot) == []  # 500 GFLOP/s bfloat16 is 12% of AMX's tile peak, which 512x512 cannot approach


def cpu_snapshot(machine: Snapshot, gflops: float, threads=None, dtype="float32", **cpu) -> Snapshot:
    features = {"sse4.2": True, "avx": True, "avx2": True, "fma": True, "avx512f": False}
    facts = dict(vendor="GenuineIntel", model="Test CPU", architecture="x86_64", logical_cpus=8, physical_cores=8,
                 affinity_cpus=8, cgroup_cpu_quota=None, usable_cpus=8, features=features, clock_mhz=3000.0,
                 sources={"architecture": "platform.machine() (uname)", "cgroup_cpu_quota": "cgroup"})
    machine.machine.cpu = CpuFacts(**{**facts, **cpu})
    machine.frameworks = {"torch": framework("torch", [FrameworkDevice("cpu", "cpu")],
                                             [proof("cpu", dtype, gflops, threads=threads)], variant="cpu")}
    return machine


def test_hyper_threads_do_not_count_and_a_cpu_without_bfloat16_units_gets_the_float32_rate(machine):
    snapshot = cpu_snapshot(machine, 100.0, dtype="bfloat16", logical_cpus=16, physical_cores=8, usable_cpus=16)
    peak = throughput_figures(snapshot)[0].peak
    assert peak.gflops == 8 * 3.0 * 32 == 768.0  # AVX2 + FMA, 8 physical cores
    assert peak.device == ("Test CPU, 8 cores x 3.00 GHz x 32 FLOP/cycle (AVX2 + FMA, 2 FMA units; no bfloat16 unit, "
                           "the float32 rate)")


def test_arm_peaks_come_from_the_core_and_an_unsourced_bfloat16_unit_is_unknown(machine):
    snapshot = cpu_snapshot(machine, 50.0, architecture="aarch64", model="Neoverse-N1",
                            features={"neon": True, "bf16": False}, physical_cores=None, usable_cpus=4, clock_mhz=2500.0)
    assert throughput_figures(snapshot)[0].peak.gflops == 4 * 2.5 * 16  # two 128-bit FMA pipes
    snapshot = cpu_snapshot(machine, 50.0, dtype="bfloat16", architecture="aarch64", model="Neoverse-V1",
                            features={"neon": True, "bf16": True})
    assert throughput_figures(snapshot)[0].peak is None
    snapshot = cpu_snapshot(machine, 50.0, architecture="aarch64", model="Cortex-A55 + Cortex-A76", features={"neon": True})
    assert throughput_figures(snapshot)[0].peak is None


def test_a_cpu_without_a_clock_or_features_has_no_peak(machine):
    assert throughput_figures(cpu_snapshot(machine, 10.0, clock_mhz=None))[0].peak is None
    assert throughput_figures(cpu_snapshot(machine, 10.0, features={}))[0].peak is None
    # With the features unknown, torch's own build capability names the unit.
    snapshot = cpu_snapshot(machine, 10.0, features={})
    snapshot.frameworks["torch"].build.cpu_capability = "AVX512"
    assert throughput_figures(snapshot)[0].peak.gflops == 8 * 3.0 * 64


def test_amd_partitions_and_dies_get_their_share_of_the_peak(machine):
    """The recorded MI300X in CPX mode: each KFD node is an eighth (38 of 304 CUs); the GPU the capture
    lists only seven nodes of cannot be told from the table, so its nodes have no peak."""
    machine.accelerators.amd = collect_amd(ProbeContext(FsRoot(KFD / "topo-mi300-cpx"), {}))
    nodes = machine.accelerators.amd.gpus
    incomplete = next(i for i, node in enumerate(nodes) if sum(n.pci_address == node.pci_address for n in nodes) == 7)
    devices = [FrameworkDevice(f"cuda:{i}", "rocm", name="AMD Instinct MI300X") for i in (0, incomplete)]
    machine.frameworks["torch"] = framework("torch", devices, [proof(d.id, "bfloat16", 100_000.0) for d in devices], "rocm")
    whole, unknown = throughput_figures(machine)
    assert whole.peak.gflops == pytest.approx(1_307_400 / 8, abs=0.1)
    assert whole.peak.device == "Instinct MI300X or Instinct MI325X, 1 of 8 partitions (38 CUs)"
    assert unknown.peak is None
    # With a visibility variable set, device N is no longer KFD GPU N.
    machine.accelerators.visibility["HIP_VISIBLE_DEVICES"] = "3"
    assert [figure.peak for figure in throughput_figures(machine)] == [None, None]

    machine.accelerators.visibility = {}
    machine.accelerators.amd = AmdFacts(gpus=[AmdGpu(node, "gfx90a", compute_units=110) for node in (2, 3)])
    machine.frameworks["torch"] = framework("torch", [FrameworkDevice("cuda:1", "rocm")],
                                            [proof("cuda:1", "bfloat16", 40_000.0)], "rocm")
    (die,) = throughput_figures(machine)
    assert (die.peak.device, die.peak.gflops) == ("one die of an Instinct MI250X", 191_500.0)
    (finding,) = prf001(machine)  # 40 of 191.5 TFLOP/s: 21%
    assert "no cause shows in the facts: the device's power, clocks and link are not known here" in finding.evidence


# --- PRF001 ----------------------------------------------------------------------------


def test_a_healthy_h100_gets_no_finding(machine):
    assert prf001(with_h100(machine, 610_000.0, 51_000.0)) == []


@pytest.mark.parametrize("gpu, evidence, fix", [
    (dict(power_limit_watts=300.0), "GPU 0: power limit 300 W, below its default 700 W (nvml)",
     "`sudo nvidia-smi -i 0 -pl 700`"),
    (dict(clock_event_reasons=["gpu_idle", "sw_thermal_slowdown"]),
     "GPU 0: clocks held down by sw_thermal_slowdown (clock-event reasons, nvml)",
     "`nvidia-smi -q -i 0 -d PERFORMANCE,TEMPERATURE,POWER`"),
    (dict(clock_event_reasons=["applications_clocks_setting"]),
     "GPU 0: clocks held down by applications_clocks_setting (clock-event reasons, nvml)", "`sudo nvidia-smi -i 0 -rac`"),
    (dict(pcie_link_width_current=8),
     "GPU 0: PCIe link trained at x8 of x16, which slows every transfer to and from it (nvml)",
     "Reseat GPU 0, or move it to a slot wired x16."),
    (dict(), "no cause shows in the facts: power limit at its default, no clock-event reason, the PCIe link at full width",
     "Run the audit again with nothing else using the device"),
], ids=["power-limit", "thermal", "application-clocks", "pcie", "no-cause"])
def test_a_throttled_h100_is_a_finding_naming_the_cause(machine, gpu, evidence, fix):
    (finding,) = prf001(with_h100(machine, 120_000.0, **gpu))
    assert (finding.severity, finding.framework) == ("warning", "torch")
    assert finding.title == "torch cuda:0 runs far below its peak: bf16 at 12%"
    assert finding.evidence[0] == ("torch cuda:0: H100 SXM, bf16: 120 of 989 TFLOP/s (12%), below 25% of its dense bf16 "
                                   "tensor cores (knowledge: peak-flops, https://resources.nvidia.com/en-us-tensor-core/"
                                   "gtc22-whitepaper-hopper)")
    assert finding.evidence[1] == "timed with the machine to itself"
    assert evidence in finding.evidence
    assert fix in finding.fix


def test_one_finding_per_device_lists_each_slow_dtype(machine):
    (finding,) = prf001(with_h100(machine, 120_000.0, 5_000.0, power_limit_watts=250.0))
    assert finding.title == "torch cuda:0 runs far below its peak: bf16 at 12%, fp32 at 7.5%"
    assert sum("below its default 700 W" in line for line in finding.evidence) == 1


def test_a_figure_timed_while_other_probes_ran_is_not_judged(machine):
    snapshot = with_h100(machine, 120_000.0)
    snapshot.frameworks["torch"].proofs[0].measured_alone = False
    assert prf001(snapshot) == []
    snapshot.frameworks["torch"].proofs[0].measured_alone = None  # a snapshot from before 1.6: judged, and said
    (finding,) = prf001(snapshot)
    assert "timed without a record of whether other work ran" in finding.evidence


def test_gpus_of_one_name_without_a_uuid_match_get_a_peak_but_no_causes(machine):
    snapshot = with_h100(machine, 120_000.0, nvml_index=None, power_limit_watts=300.0)
    gpus = snapshot.accelerators.nvidia.gpus
    gpus.append(dataclasses.replace(gpus[0], index=1, uuid="GPU-2"))
    (finding,) = prf001(snapshot)
    assert "no cause shows in the facts: the device's power, clocks and link are not known here" in finding.evidence


def test_cpu_threads_beyond_the_cgroup_quota_are_named_with_the_real_count(machine):
    snapshot = cpu_snapshot(machine, 5.0, threads=8, cgroup_cpu_quota=2.0, usable_cpus=2)
    (finding,) = prf001(snapshot)  # 5 of 2 x 3.0 x 32 = 192 GFLOP/s
    assert finding.title == "torch cpu runs far below its peak: fp32 at 2.6%"
    assert "8 threads against a cgroup quota of 2 CPUs: they queue for CPU time (cgroup)" in finding.evidence
    assert finding.fix == "Run torch with 2 threads: `torch.set_num_threads(2)`, or `OMP_NUM_THREADS=2` in its environment."


def test_cpu_fewer_threads_than_cores_is_named(machine):
    (finding,) = prf001(cpu_snapshot(machine, 60.0, threads=1))  # 60 of 8 x 3.0 x 32 = 768 GFLOP/s
    assert "1 thread(s) for 8 usable cores" in finding.evidence and "`torch.set_num_threads(8)`" in finding.fix
    assert "timed with the machine to itself, 1 thread(s)" in finding.evidence


def test_a_healthy_cpu_and_an_amx_figure_are_not_findings(machine):
    assert prf001(cpu_snapshot(machine, 400.0, threads=8)) == []
    amx = {"avx512f": True, "avx2": True, "fma": True, "avx": True, "amx_bf16": True, "amx_tile": True}
    assert prf001(cpu_snapshot(machine, 100.0, threads=8, dtype="bfloat16", features=amx)) == []  # 0.4% of AMX's peak
