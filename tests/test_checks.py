"""Checks, readiness and recommendation from constructed snapshots: each fires, each near-miss does not."""

from __future__ import annotations

import copy

import pytest

from auditor.checks import REGISTRY, run_checks
from auditor.facts import (ComputeProof, FrameworkBuild, FrameworkDevice, FrameworkFacts, NvidiaFacts, NvidiaGpu,
                           PackageFacts, ProbeRun, Snapshot, from_dict, to_dict)
from auditor.decisions.readiness import assess
from auditor.pipeline import build_report
from conftest import quick_snapshot
from machines import linux_machine


@pytest.fixture
def base(fake_root) -> Snapshot:
    """A clean Linux machine with torch and TensorFlow proven on the CPU, no findings."""
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.mode = "full"
    snapshot.packages = {"torch": PackageFacts("torch", "2.13.0", modules=["torch"]),
                         "tensorflow": PackageFacts("tensorflow", "2.21.0", modules=["tensorflow"])}
    snapshot.frameworks = {
        "torch": _framework("torch", "2.13.0+cpu", "cpu"),
        "tensorflow": _framework("tensorflow", "2.21.0", "/device:CPU:0", xla=True),
    }
    snapshot.accelerators.nvidia = None
    return snapshot


def _framework(name, version, device, xla=False, variant="cpu") -> FrameworkFacts:
    proofs = [ComputeProof(device, "matmul 256x256", "float32", True, 6e-7, 2e-3, 0.001)]
    if xla:
        proofs.append(ComputeProof(device, "matmul 256x256", "float32", True, 6e-7, 2e-3, 0.002, compiler="xla"))
    return FrameworkFacts(name=name, probe=ProbeRun(name, "ok", None, 1.0), distribution=name,
                          distribution_version=version.split("+")[0], version=version,
                          build=FrameworkBuild(variant=variant), devices=[FrameworkDevice(device, "cpu")], proofs=proofs)


def codes(snapshot) -> list[str]:
    return [f.code for f in run_checks(snapshot)]


def test_clean_machine_has_no_findings_and_is_ready(base):
    assert codes(base) == []
    readiness = assess(base, [])
    assert readiness.status == "ready"
    assert [fw.status for fw in readiness.frameworks] == ["ready", "ready"]


def test_every_check_has_code_name_summary_and_explanation():
    seen = set()
    for check in REGISTRY:
        assert check.code[:-3].isalpha() and check.code[-3:].isdigit(), check.code
        assert check.code not in seen
        seen.add(check.code)
        assert check.name == check.name.lower() and " " not in check.name
        assert check.summary and len(check.explanation) > len(check.summary)


@pytest.mark.parametrize("status, code", [("error", "FW001"), ("crashed", "FW002"), ("timeout", "FW003")])
def test_broken_framework_probe_is_an_error_finding(base, status, code):
    base.frameworks["torch"].probe = ProbeRun("torch", status, "ImportError: libcudart.so.12: cannot open", 0.5)
    base.frameworks["torch"].proofs = []
    findings = run_checks(base)
    assert [f.code for f in findings] == [code]
    assert findings[0].severity == "error"
    assert "libcudart.so.12" in findings[0].evidence[0]
    assert "torch==2.13.0" in findings[0].fix or "--timeout" in findings[0].fix
    assert assess(base, findings).status == "not-ready"


def test_wrong_numbers_make_a_device_broken_not_ready(base):
    base.frameworks["torch"].proofs = [ComputeProof("cpu", "matmul 256x256", "float32", False, 0.7, 2e-3, 0.001,
                                                    "result differs from the float64 reference by 0.7")]
    findings = run_checks(base)
    assert [f.code for f in findings] == ["FW004"]
    readiness = assess(base, findings)
    torch = next(fw for fw in readiness.frameworks if fw.framework == "torch")
    assert torch.status == "broken"
    assert torch.devices[0].status == "broken"
    assert [c.framework for c in build_report(base).recommendation.choices] == ["tensorflow"]


def test_failed_xla_is_a_warning_and_eager_stays_ready(base):
    base.frameworks["tensorflow"].proofs[1] = ComputeProof("/device:CPU:0", "matmul 256x256", "float32", False,
                                                           error="InternalError: ptxas not found", compiler="xla")
    findings = run_checks(base)
    assert [(f.code, f.severity) for f in findings] == [("FW005", "warning")]
    assert assess(base, findings).status == "ready"


def test_xla_proof_of_a_1_1_snapshot_is_still_read_as_xla(base):
    old = from_dict(ComputeProof, {"device": "/device:CPU:0", "operation": "matmul (XLA jit_compile) 256x256",
                                   "dtype": "float32", "ok": False, "error": "InternalError: ptxas not found"})
    assert old.compiler == "xla" and old.workload is None
    base.frameworks["tensorflow"].proofs[1] = old
    assert codes(base) == ["FW005"]


@pytest.mark.parametrize("compiler, dtype, code", [
    ("torch.compile", "float32", "FW008"),  # Inductor broken: eager still fine
    (None, "bfloat16", "FW009"),  # float32 fine, mixed precision wrong
    (None, "float32", "FW004"),
])
def test_compiler_and_mixed_precision_failures_have_their_own_codes(base, compiler, dtype, code):
    base.frameworks["torch"].proofs.append(ComputeProof("cpu", "train step (MLP 16-32-4, SGD)", dtype, False,
                                                        0.4, 5e-2, 0.001, "result differs from the float64 "
                                                        "reference by 0.4", workload="train-step", compiler=compiler))
    findings = run_checks(base)
    assert [f.code for f in findings] == [code]
    torch = next(fw for fw in assess(base, findings).frameworks if fw.framework == "torch")
    assert torch.status == ("broken" if code == "FW004" else "ready")


def test_a_proof_skipped_in_this_mode_is_neither_pass_nor_failure(base):
    base.frameworks["torch"].proofs.append(ComputeProof("cpu", "train-step", "float32", False, workload="train-step",
                                                        compiler="torch.compile", skipped="needs --deep"))
    findings = run_checks(base)
    assert findings == []
    assert assess(base, findings).status == "ready"


def test_two_tensorflow_distributions_conflict(base):
    base.packages["tensorflow-cpu"] = PackageFacts("tensorflow-cpu", "2.20.0", modules=["tensorflow"])
    finding = next(f for f in run_checks(base) if f.code == "ENV001")
    assert finding.title == "2 distributions install the tensorflow module: tensorflow 2.21.0, tensorflow-cpu 2.20.0"
    assert "pip uninstall -y tensorflow tensorflow-cpu && pip install tensorflow==2.21.0" in finding.fix


def test_windows_tensorflow_metapackage_is_not_a_conflict(base):
    # tensorflow on Windows installs no module of its own; it depends on tensorflow-intel.
    base.packages["tensorflow"] = PackageFacts("tensorflow", "2.15.0", modules=[])
    base.packages["tensorflow-intel"] = PackageFacts("tensorflow-intel", "2.15.0", modules=["tensorflow"])
    assert "ENV001" not in codes(base)


def test_deprecated_pynvml_distribution(base):
    assert "ENV002" not in codes(base)
    base.packages["pynvml"] = PackageFacts("pynvml", "11.5.0", location="/site", modules=["pynvml"])
    finding = next(f for f in run_checks(base) if f.code == "ENV002")
    assert finding.fix == "`pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py`"


def test_avx_rule_needs_tensorflow(base):
    base.machine.cpu.features["avx"] = False
    assert "CPU001" in codes(base)
    del base.frameworks["tensorflow"]
    assert "CPU001" not in codes(base)


def test_quick_mode_is_unproven(base):
    base.mode = "quick"
    for fw in base.frameworks.values():
        fw.probe, fw.proofs = ProbeRun(fw.name, "skipped", "--quick reads package metadata only"), []
    readiness = assess(base, run_checks(base))
    assert readiness.status == "unproven"
    assert {fw.status for fw in readiness.frameworks} == {"unproven"}


def test_no_framework_installed_is_an_error_finding_whose_fix_installs_one(base):
    base.frameworks, base.packages = {}, {}
    report = build_report(base)
    assert report.readiness.status == "not-ready"
    assert [(f.code, f.severity) for f in report.findings] == [("FW012", "error")]
    # This machine is Linux x86_64 without an NVIDIA GPU: PyPI's default torch would bring CUDA.
    assert "`pip install torch --index-url https://download.pytorch.org/whl/cpu`" in report.findings[0].fix
    first = report.recommendation.next_steps[0]
    assert first.command == "pip install torch --index-url https://download.pytorch.org/whl/cpu" and len(first.goals) == 5  # every goal asked here needs it
    assert report.recommendation.summary.startswith("Nothing here is ready for ML work: no ML framework is installed")


def test_frameworks_that_all_failed_are_nothing_usable(base):
    for fw in base.frameworks.values():
        fw.proofs = [ComputeProof(fw.devices[0].id, "matmul 256x256", "float32", False, 0.7, 2e-3, 0.001,
                                  "result differs from the float64 reference by 0.7")]
    assert codes(base) == ["FW004", "FW004", "FW012"]
    base.frameworks["torch"].proofs[0].ok, base.frameworks["torch"].proofs[0].error = True, None
    assert "FW012" not in codes(base)  # one framework that computes is something usable


def test_unknown_is_not_nothing(base):
    for fw in base.frameworks.values():
        fw.proofs = None  # a snapshot from a tool that records no proofs
    assert "FW012" not in codes(base)
    base.mode = "quick"
    for fw in base.frameworks.values():
        fw.probe = ProbeRun(fw.name, "skipped", "--quick reads package metadata only")
    assert "FW012" not in codes(base)


def _with_gpus(snapshot: Snapshot, driver: str, capability: str, torch_version: str = "2.9.1+cpu") -> Snapshot:
    snapshot.accelerators.nvidia = NvidiaFacts(driver_version=driver,
                                               gpus=[NvidiaGpu(index=0, name="NVIDIA GPU", uuid="GPU-1", memory_total_bytes=24 * 1024**3,
                                                               compute_capability=capability)])
    snapshot.frameworks["torch"].version = torch_version
    return snapshot


@pytest.mark.parametrize("driver, capability, torch_version, variant", [
    ("570.86.15", "8.6", "2.9.1+cpu", "cu128"),  # R570 runs CUDA 12.x, not 13: the newest 12.x build
    ("580.65.06", "8.9", "2.11.0+cpu", "cu130"),  # R580 runs CUDA 13 (stable from torch 2.11 on)
    ("580.65.06", "7.0", "2.9.1+cpu", "cu128"),  # V100: the CUDA 13 build has no sm_70
    ("560.35.03", "6.1", "2.9.1+cpu", "cu126"),  # Pascal: only cu126 still ships sm_60
    ("570.86.15", "8.6", "2.13.0+cpu", "cu126"),  # 2.13 has no cu128, and R570 cannot run cu130
])
def test_cpu_only_torch_with_an_nvidia_gpu_gets_a_driver_fitted_install(base, driver, capability, torch_version, variant):
    snapshot = _with_gpus(base, driver, capability, torch_version)
    report = build_report(snapshot)
    commands = [step.command for step in report.recommendation.next_steps if step.command]
    pin = torch_version.split("+")[0]
    assert f"pip install torch=={pin} --index-url https://download.pytorch.org/whl/{variant}" in commands
    assert len(commands) == len(set(commands))  # each command once
    research = next(goal for goal in report.recommendation.goals if goal.goal == "research")
    assert research.status == "not-ready" and research.framework == "torch"
    assert "research" in report.recommendation.summary and "not ready for" in report.recommendation.summary
    assert report.readiness.summary.endswith("The 1 NVIDIA GPU(s) go unused: every framework runs on the CPU.")


def test_a_driver_older_than_every_torch_variant_says_update_the_driver(base):
    snapshot = _with_gpus(base, "515.43.04", "8.0")  # CUDA 11.7's driver: no 12.x build runs on it
    steps = build_report(snapshot).recommendation.next_steps
    torch_step = next(step for step in steps if "too old for every torch CUDA build" in step.action)
    assert torch_step.command is None
    # The driver is named with what it must reach, and the older release that runs on it today.
    assert "Driver 515.43.04 is too old for every torch CUDA build of torch 2.9 and newer" in torch_step.action
    assert "update the NVIDIA driver to 560.28.03 or newer" in torch_step.action
    # 2.5 is the newest release whose CUDA 11.8 architecture list is recorded (2.6 and 2.7's are not).
    assert "or keep this driver with torch 2.5 (`pip install torch==2.5.* --index-url " \
           "https://download.pytorch.org/whl/cu118`)" in torch_step.action


def test_a_proven_gpu_is_recommended_first(base):
    torch = base.frameworks["torch"]
    torch.build = FrameworkBuild(variant="cuda", cuda_version="12.8")
    torch.devices.append(FrameworkDevice("cuda:0", "cuda", "NVIDIA H100", compute_capability="9.0"))
    torch.proofs.append(ComputeProof("cuda:0", "matmul 256x256", "float32", True, 1e-6, 2e-3, 0.0001))
    base.accelerators.nvidia = NvidiaFacts(driver_version="570.86.15", gpus=[NvidiaGpu(
        index=0, name="NVIDIA H100 80GB HBM3", uuid="GPU-1", memory_total_bytes=80 * 1024**3, compute_capability="9.0")])
    recommendation = build_report(base).recommendation
    research = next(goal for goal in recommendation.goals if goal.goal == "research")
    assert (research.framework, research.device) == ("torch", "cuda:0")
    assert recommendation.summary.startswith("Use PyTorch on cuda:0 for ")
    # The choice is the framework the goals pick, on the accelerator proven for one of them.
    assert [(c.framework, c.device) for c in recommendation.choices] == [("torch", "cuda:0")]


def test_snapshot_round_trips_through_json_data(base):
    data = to_dict(base)
    assert from_dict(Snapshot, copy.deepcopy(data)) == base
    data["future_section"] = {"added": "in 1.1"}  # readers ignore keys they do not know
    assert from_dict(Snapshot, data) == base
