"""The compatibility verdicts, table-driven: each check fires on its case and not on the near miss."""

from __future__ import annotations

import pytest

from auditor.checks import run_checks
from auditor.facts import (AmdFacts, AmdGpu, AppleFacts, ComputeProof, FrameworkBuild, FrameworkDevice,
                           FrameworkFacts, FrameworkRuntime, JetsonFacts, MigInstance, NvidiaFacts, NvidiaGpu,
                           PackageFacts, ProbeRun)
from auditor.verdicts import coverage, parse_architecture
from conftest import quick_snapshot
from machines import linux_machine

CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
CU128 = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]
TF220 = ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"]


@pytest.mark.parametrize("archs, cc, expected", [
    (["sm_80"], "8.6", "sass"),  # same major, older minor: runs
    (["sm_86"], "8.0", "none"),  # newer minor does not run on older silicon
    (["sm_80"], "9.0", "none"),  # a new major needs its own SASS or PTX
    (TF220, "9.0", "ptx"),
    (TF220, "12.0", "ptx"),
    (CU128, "12.1", "sass"),  # GB10 runs sm_120
    (CU126, "12.0", "none"),  # the RTX 5090 'no kernel image' case
    (["sm_90a"], "9.0", "sass"),
])
def test_coverage_rule(archs, cc, expected):
    assert coverage(archs, cc) == expected


def test_parse_architecture():
    assert parse_architecture("sm_120") == ("sm", (12, 0))
    assert parse_architecture("compute_90") == ("compute", (9, 0))
    assert parse_architecture("gfx90a") is None


@pytest.fixture
def machine(fake_root):
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.mode, snapshot.frameworks = "full", {}
    return snapshot


def gpu(index=0, name="NVIDIA GPU", cc="8.6", arch="Ampere", **kw) -> NvidiaGpu:
    return NvidiaGpu(index=index, name=name, uuid=f"GPU-{index:04d}aaaa", compute_capability=cc, architecture=arch, **kw)


def with_nvidia(snapshot, driver: str, *gpus: NvidiaGpu):
    snapshot.accelerators.nvidia = NvidiaFacts(driver_version=driver, gpus=list(gpus))
    return snapshot


def framework(name="torch", version="2.9.1+cu128", variant="cuda", cuda="12.8", cudnn="9.10.2", archs=CU128,
              devices=("cpu", "cuda:0")) -> FrameworkFacts:
    return FrameworkFacts(
        name=name, probe=ProbeRun(name, "ok"), distribution=name, distribution_version=version.split("+")[0],
        version=version, build=FrameworkBuild(variant=variant, cuda_version=cuda, cudnn_version=cudnn,
                                              compiled_architectures=list(archs)),
        runtime=FrameworkRuntime(),
        devices=[FrameworkDevice(d, "cpu" if d in ("cpu", "/device:CPU:0") else "cuda") for d in devices],
        proofs=[ComputeProof(d, "matmul 256x256", "float32", True, 1e-7, 2e-3, 0.001) for d in devices])


def codes(snapshot, prefixes=("ARC", "DRV", "FW006", "FW007", "PLT", "ENV003", "ENV004", "ROC", "GPU007", "GPU008")):
    return sorted(f.code for f in run_checks(snapshot) if f.code.startswith(prefixes))


def finding(snapshot, code):
    return next(f for f in run_checks(snapshot) if f.code == code)


def test_rtx5090_with_a_cu126_build_has_no_kernel_image(machine):
    with_nvidia(machine, "570.133.07", gpu(name="NVIDIA GeForce RTX 5090", cc="12.0", arch="Blackwell"))
    machine.frameworks["torch"] = framework(version="2.9.1+cu126", cuda="12.6", archs=CU126)
    assert codes(machine) == ["ARC001"]  # the driver itself is fine: R570 is above CUDA 12.6's own driver
    fix = finding(machine, "ARC001").fix
    # The driver (R570, CUDA 12.8) runs cu128 but not cu130 (needs R580): cu128 is the fitting build.
    assert "pip install torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128" in fix


def test_near_miss_sm86_gpu_with_sm80_build(machine):
    with_nvidia(machine, "570.133.07", gpu(cc="8.6"))
    machine.frameworks["torch"] = framework(archs=["sm_80"])
    assert "ARC001" not in codes(machine)


def test_hopper_with_an_sm80_only_build(machine):
    with_nvidia(machine, "570.133.07", gpu(name="NVIDIA H100", cc="9.0", arch="Hopper"))
    machine.frameworks["torch"] = framework(archs=["sm_80"])
    assert "ARC001" in codes(machine)


def test_tensorflow_ptx_only_on_hopper_is_a_warning(machine):
    with_nvidia(machine, "580.65.06", gpu(name="NVIDIA H100", cc="9.0", arch="Hopper"))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.20.0", cuda="12.5.1", cudnn="9", archs=TF220,
                                                 devices=("/device:CPU:0", "/device:GPU:0"))
    assert codes(machine) == ["ARC002"]
    with_nvidia(machine, "580.65.06", gpu(name="NVIDIA L4", cc="8.9", arch="Ada"))
    assert codes(machine) == []


@pytest.mark.parametrize("driver, expected", [
    ("520.61.05", ["DRV001"]),  # below the CUDA 12 family floor
    ("525.60.13", ["DRV002"]),  # exactly the floor: runs, by minor-version compatibility only
    ("525.60.14", ["DRV002"]),  # one patch above the floor: no DRV001
    ("570.26", []),  # CUDA 12.8's own driver
    ("570.86.15", []),
])
def test_driver_against_a_cuda_12_8_build(machine, driver, expected):
    with_nvidia(machine, driver, gpu(cc="8.6"))
    machine.frameworks["torch"] = framework()
    assert codes(machine) == expected


def test_driver_too_old_names_the_floor_and_a_build_it_runs(machine):
    with_nvidia(machine, "560.35.03", gpu(cc="8.6"))
    machine.frameworks["torch"] = framework(version="2.11.0+cu130", cuda="13.0", archs=CU130)
    found = finding(machine, "DRV001")
    assert "driver >= 580" in " ".join(found.evidence)
    assert "--index-url https://download.pytorch.org/whl/cu12" in found.fix  # a CUDA 12 build this driver runs


def test_cuda13_build_on_volta(machine):
    with_nvidia(machine, "580.95.05", gpu(name="Tesla V100", cc="7.0", arch="Volta"))
    machine.frameworks["torch"] = framework(version="2.11.0+cu130", cuda="13.0", archs=CU130)
    assert codes(machine) == ["DRV003"]  # said once, by the precise rule, not also as ARC001
    with_nvidia(machine, "580.95.05", gpu(name="Tesla T4", cc="7.5", arch="Turing"))
    assert codes(machine) == []


@pytest.mark.parametrize("driver, fires", [("590.44.01", True), ("580.95.05", False)])
def test_driver_branch_after_the_last_one_for_pascal(machine, driver, fires):
    with_nvidia(machine, driver, gpu(name="Tesla P100", cc="6.0", arch="Pascal"))
    assert codes(machine) == (["DRV004"] if fires else [])


def test_cpu_only_builds_next_to_a_gpu(machine):
    with_nvidia(machine, "570.133.07", gpu(cc="8.9", arch="Ada"))
    machine.frameworks["torch"] = framework(version="2.9.1+cpu", variant="cpu", cuda=None, archs=[], devices=("cpu",))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.20.0", variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    fixes = {f.code + f.title.split()[0]: f.fix for f in run_checks(machine) if f.code == "FW006"}
    assert "pip install torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128" in fixes["FW006torch"]
    assert 'pip install "tensorflow[and-cuda]==2.20.0"' in fixes["FW006tensorflow"]
    machine.accelerators.nvidia = None
    assert codes(machine) == []


def test_cuda_build_that_sees_no_gpu(machine):
    with_nvidia(machine, "570.133.07", gpu(cc="8.9", arch="Ada"))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.20.0", cuda="12.5.1", cudnn="9", archs=TF220,
                                                 devices=("/device:CPU:0",))
    # Without the and-cuda wheels the cause is named (FW011), not only the symptom (FW007).
    found = finding(machine, "FW011")
    assert found.title == ("TensorFlow 2.20.0 has no CUDA libraries to load: nvidia-cudnn-cu12, nvidia-cublas-cu12 "
                           "not installed")
    assert found.fix.startswith('`pip install "tensorflow[and-cuda]==2.20.0"`')
    assert "FW007" not in codes(machine)
    # With them installed and still no GPU, the loader did not find them (TensorFlow 2.16.1's bug).
    for name in ("nvidia-cudnn-cu12", "nvidia-cublas-cu12"):
        machine.packages[name] = PackageFacts(name, "12.5.0", modules=["nvidia"])
    found = finding(machine, "FW007")
    assert "CUDA libraries loaded by tensorflow: none" in found.evidence[2]
    assert "export LD_LIBRARY_PATH=" in found.fix and "pip install" not in found.fix
    assert "FW011" not in [f.code for f in run_checks(machine)]
    machine.frameworks["tensorflow"].devices.append(FrameworkDevice("/device:GPU:0", "gpu"))
    assert "FW007" not in codes(machine)


@pytest.mark.parametrize("tf_version, fires", [("2.15.0", True), ("2.10.1", False)])
def test_tensorflow_gpu_on_native_windows(machine, tf_version, fires):
    machine.machine.host.os, machine.machine.host.os_release = "Windows", "Windows 10.0.22631"
    with_nvidia(machine, "576.02", gpu(cc="8.6"))
    machine.frameworks["tensorflow"] = framework("tensorflow", tf_version, variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    assert ("PLT001" in codes(machine)) is fires


def test_apple_silicon_rules(machine):
    machine.accelerators.apple = AppleFacts(macos_version="12.2", arm64=True, mps_eligible=False, tensorflow_metal=None)
    machine.frameworks["torch"] = framework(version="2.13.0", variant="mps", cuda=None, archs=[], devices=("cpu",))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.16.2", variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    assert codes(machine) == ["PLT002", "PLT003"]
    assert finding(machine, "PLT002").fix == "`pip install tensorflow-metal`"
    machine.accelerators.apple = AppleFacts(macos_version="14.5", arm64=True, mps_eligible=True, tensorflow_metal="1.2.0")
    assert codes(machine) == []


@pytest.mark.parametrize("python, fires", [("3.9.18", True), ("3.10.0", False), ("3.14.0", False), ("3.15.0", True)])
def test_python_outside_the_torch_release_range(machine, python, fires):
    machine.machine.python.version = python
    machine.frameworks["torch"] = framework(version="2.9.1+cpu", variant="cpu", cuda=None, archs=[], devices=("cpu",))
    assert ("ENV003" in codes(machine)) is fires


def test_torch_and_tensorflow_wanting_different_cuda_majors(machine):
    machine.frameworks["torch"] = framework(version="2.11.0+cu130", cuda="13.0", cudnn="9.19.0", archs=CU130)
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.20.0", cuda="12.5.1", cudnn="9", archs=TF220)
    assert finding(machine, "ENV004").title.endswith("want different majors: CUDA 13 vs 12")
    machine.frameworks["torch"] = framework()  # CUDA 12.8, cuDNN 9: same majors
    assert "ENV004" not in codes(machine)


@pytest.mark.parametrize("target, fires", [("gfx1100", True), ("gfx942", False), ("gfx90a", False)])
def test_rocm_build_against_the_gpu_target(machine, target, fires):
    machine.accelerators.amd = AmdFacts(kfd_present=True, render_nodes=["/dev/dri/renderD128"],
                                        gpus=[AmdGpu(node=1, gfx_target=target)])
    machine.frameworks["torch"] = framework(version="2.9.1+rocm6.4", variant="rocm", cuda=None,
                                            archs=["gfx90a:xnack-", "gfx942"], devices=("cpu", "cuda:0"))
    assert codes(machine) == (["ROC001"] if fires else [])


def test_mig_enabled_without_instances(machine):
    with_nvidia(machine, "550.90.07", gpu(name="NVIDIA H100", cc="9.0", arch="Hopper", mig_mode_current=True))
    assert codes(machine) == ["GPU007"]
    machine.accelerators.nvidia.gpus[0].mig_instances = [MigInstance(0, "MIG-1234")]
    assert codes(machine) == []


@pytest.mark.parametrize("value, fires", [("", True), ("-1", True), ("7", True), ("1", False), ("GPU-0001", False),
                                          ("gpu-0001aa", False), ("GPU-ffff", True)])
def test_cuda_visible_devices_hiding_every_gpu(machine, value, fires):
    with_nvidia(machine, "550.90.07", gpu(0), gpu(1))
    machine.accelerators.visibility["CUDA_VISIBLE_DEVICES"] = value
    assert codes(machine) == (["GPU008"] if fires else [])


def test_tpu_present_but_a_framework_cannot_open_it(machine):
    from auditor.facts import TpuFacts

    machine.frameworks["jax"] = framework("jax", "0.10.2", variant="cpu", cuda=None, archs=[], devices=("cpu:0",))
    machine.frameworks["jax"].runtime.backend_errors["tpu"] = "RuntimeError: Backend 'tpu' failed to initialize"
    assert codes(machine, ("TPU",)) == []  # no TPU signal: nothing to say
    machine.accelerators.tpu = TpuFacts(signals=["4 Google TPU PCI device(s)"], accelerator_type="v5litepod-4")
    found = finding(machine, "TPU001")
    assert found.fix.startswith('Install jax\'s TPU build: `pip install -U "jax[tpu]"`')
    machine.frameworks["jax"].runtime.backend_errors.clear()  # JAX opened the TPU
    assert codes(machine, ("TPU",)) == []


# --- unknown facts, fitted fixes and the checks real threads needed -------------------------


def test_a_framework_whose_devices_were_not_listed_is_not_told_it_sees_no_gpu(machine):
    with_nvidia(machine, "570.133.07", gpu(cc="8.9", arch="Ada"))
    machine.frameworks["torch"] = framework(version="2.9.1+cu128")
    machine.frameworks["torch"].devices, machine.frameworks["torch"].proofs = None, None
    assert codes(machine) == []  # FW007 needs someone to have looked
    machine.frameworks["torch"].devices = [FrameworkDevice("cpu", "cpu")]
    assert codes(machine) == ["FW007"]


def test_an_unknown_driver_gets_the_candidate_builds_and_the_driver_each_needs(machine):
    with_nvidia(machine, None, gpu(name="NVIDIA GeForce RTX 3090", cc="8.6"))
    machine.frameworks["torch"] = framework(version="2.9.1+cpu", variant="cpu", cuda=None, archs=[], devices=("cpu",))
    fix = finding(machine, "FW006").fix
    # 2.9's CUDA 13.0 build is experimental: the newest stable one is chosen, the others named with their driver.
    assert fix.startswith("`pip install torch==2.9.1 --index-url https://download.pytorch.org/whl/cu128`")
    assert ("the driver version is unknown here (`nvidia-smi` shows it): cu128 needs driver 570.26 or newer, "
            "cu126 needs driver 560.28.03 or newer") in fix


def test_a_release_without_a_fitting_build_sends_to_the_nearest_newer_release(machine):
    machine.machine.host.os = "Windows"
    with_nvidia(machine, "576.02", gpu(name="NVIDIA GeForce RTX 5070 Ti", cc="12.0", arch="Blackwell"))
    machine.frameworks["torch"] = framework(version="2.6.0+cu126", cuda="12.6", archs=[])  # list not read: knowledge
    found = finding(machine, "ARC001")
    assert "knowledge: pytorch-releases, torch 2.6 CUDA 12.6 (windows)" in found.evidence[1]
    assert "`pip install torch==2.7.* --index-url https://download.pytorch.org/whl/cu128`" in found.fix
    assert "no CUDA build of the installed torch 2.6 runs here" in found.fix
    assert "No published build" not in found.fix and "update the driver" not in found.fix.lower()


def test_a_cuda_older_than_the_gpu_is_not_rescued_by_its_ptx(machine):
    machine.machine.python.version = "3.8.10"  # torch 1.8 publishes wheels for 3.6-3.9
    with_nvidia(machine, "450.80.02", gpu(name="A100-SXM4-40GB", cc="8.0"))
    machine.frameworks["torch"] = framework(version="1.8.1+cu102", cuda="10.2", archs=["sm_70", "compute_70"])
    found = finding(machine, "ARC001")
    assert "its CUDA 10.2 predates compute capability 8.0 (first supported by CUDA 11.0)" in found.evidence[2]
    assert "`pip install torch==1.8.1 --index-url https://download.pytorch.org/whl/cu111`" in found.fix


def test_a_tensorflow_1_cpu_package_is_told_to_use_tensorflow_gpu_and_both_keep_the_gpu_one(machine):
    machine.machine.python.version, machine.packages = "3.7.17", {}
    with_nvidia(machine, "440.33.01", gpu(name="NVIDIA GeForce GTX 1080 Ti", cc="6.1", arch="Pascal"))
    machine.frameworks["tensorflow"] = framework("tensorflow", "1.15.2", variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    machine.packages["tensorflow"] = PackageFacts("tensorflow", "1.15.2", modules=["tensorflow"])
    assert finding(machine, "FW006").fix.startswith(
        "`pip uninstall -y tensorflow && pip install tensorflow-gpu==1.15.2`: TensorFlow 1.15.2's GPU build is the "
        "separate tensorflow-gpu distribution")
    machine.packages["tensorflow-gpu"] = PackageFacts("tensorflow-gpu", "1.15.2", modules=["tensorflow"])
    assert finding(machine, "ENV001").fix.endswith("pip install tensorflow-gpu==1.15.2`")
    machine.accelerators.nvidia = None  # no GPU: the CPU package is the one this machine can use
    assert finding(machine, "ENV001").fix.endswith("pip install tensorflow==1.15.2`")


def test_a_jetson_with_the_generic_pypi_wheel_gets_nvidias_jetson_wheels(machine):
    machine.machine.host.architecture, machine.machine.python.version = "aarch64", "3.10.12"
    machine.accelerators.jetson = JetsonFacts(model="NVIDIA Jetson AGX Orin Developer Kit", soc="tegra234",
                                              l4t_release="36.4.3")
    machine.frameworks["torch"] = framework(version="2.9.1+cpu", variant="cpu", cuda=None, archs=[], devices=("cpu",))
    found = finding(machine, "GPU009")
    assert "L4T 36.4.3" in found.evidence[0]
    assert "pip uninstall -y torch && pip3 install torch --index-url https://pypi.jetson-ai-lab.io/jp6/cu126" in found.fix
    machine.machine.python.version = "3.12.3"  # NVIDIA's JetPack 6 wheels are for Python 3.10
    found = finding(machine, "GPU009")
    assert "are built for Python 3.10, and this is Python 3.12.3: create the environment with Python 3.10" in found.fix
    machine.machine.python.version = "3.10.12"
    machine.machine.host.architecture = "x86_64"  # an SDK image's stray /etc/nv_tegra_release is no Jetson
    assert "GPU009" not in [f.code for f in run_checks(machine)]


@pytest.mark.parametrize("python, installed, fires", [("3.14.3", (), True), ("3.12.7", (), False),
                                                       ("3.14.3", ("torch",), False)])
def test_a_python_no_framework_publishes_wheels_for(machine, python, installed, fires):
    machine.machine.python.version = python
    for name in installed:
        machine.frameworks[name] = framework(name)
    found = [f for f in run_checks(machine) if f.code == "ENV006"]
    assert bool(found) is fires
    if fires:
        assert found[0].title.startswith("tensorflow 2.21 publishes no wheel for Python 3.14.3")
        where = machine.machine.python.environment_path
        # Recreated in place, so that the environment's own pip (or a new .venv's) installs into it.
        assert (f"`uv venv --clear --seed --python 3.13 {where}`" if where else
                "`uv venv --clear --seed --python 3.13 .venv`") in found[0].fix


def test_an_old_python_is_told_the_newest_release_with_its_wheels_and_the_cpu_index(machine):
    machine.machine.python.version = "3.8.18"
    found = {f.framework: f for f in run_checks(machine) if f.code == "ENV006"}
    # torch 2.4 is the last release for 3.8; on Linux x86_64 without an NVIDIA GPU, the CPU index.
    assert ('torch 2.4 is the newest release with wheels for it (`pip install "torch==2.4.*" --index-url '
            'https://download.pytorch.org/whl/cpu`)') in found["torch"].title
    assert '(`pip install "tensorflow==2.13.*"`)' in found["tensorflow"].title


@pytest.mark.parametrize("variables, fires", [
    ({"VIRTUAL_ENV": "/home/ada/proj/.venv"}, True),
    ({"CONDA_PREFIX": "/opt/conda/envs/ml"}, True),
    # A venv activated on top of conda's base: the venv is the one in use.
    ({"VIRTUAL_ENV": "{prefix}", "CONDA_PREFIX": "/opt/conda"}, False),
    ({"VIRTUAL_ENV": "{prefix}/"}, False),
    ({}, False)])
def test_an_active_environment_other_than_the_audited_one_is_named_with_its_command(machine, variables, fires):
    prefix = machine.machine.python.prefix
    machine.machine.host.environment_variables = {k: v.format(prefix=prefix) for k, v in variables.items()}
    found = [f for f in run_checks(machine) if f.code == "ENV007"]
    assert bool(found) is fires
    if fires:
        (name, value), = [(k, v) for k, v in variables.items()]
        assert found[0].title.startswith(f"{name} names {value}, but the audit inspected {prefix}")
        assert found[0].fix == f"Audit the active environment: `auditor audit --python {value}`."


@pytest.mark.parametrize("macos, torch, minimum", [("12.7.6", "2.5.1", "13.0"), ("13.7.4", "2.10.0", "14.0"),
                                                   ("12.2.1", "1.13.1", "12.3")])
def test_the_macos_floor_for_mps_follows_the_torch_release(machine, macos, torch, minimum):
    machine.accelerators.apple = AppleFacts(macos_version=macos, arm64=True, mps_eligible=True)
    machine.frameworks["torch"] = framework(version=torch, variant="mps", cuda=None, archs=[], devices=("cpu",))
    found = finding(machine, "PLT003")
    assert found.title.startswith(f"macOS {macos} is older than {minimum}")
    machine.accelerators.apple.macos_version = minimum
    assert "PLT003" not in [f.code for f in run_checks(machine)]


def test_hsa_override_makes_the_listed_target_the_one_judged(machine):
    machine.accelerators.amd = AmdFacts(kfd_present=True, render_nodes=["/dev/dri/renderD128"],
                                        gpus=[AmdGpu(node=1, gfx_target="gfx1032")])
    machine.frameworks["torch"] = framework(version="2.5.1+rocm6.2", variant="rocm", cuda=None, archs=[])
    machine.frameworks["torch"].build.rocm_version = "6.2"
    found = finding(machine, "ROC001")
    assert found.fix.startswith("`export HSA_OVERRIDE_GFX_VERSION=10.3.0`")
    machine.accelerators.visibility["HSA_OVERRIDE_GFX_VERSION"] = "10.3.0"
    assert "ROC001" not in codes(machine)


def test_every_registered_check_is_exercised_by_a_test():
    """Each code must appear in a test that fires it (see the test modules next to this one)."""
    from pathlib import Path

    from auditor.checks import REGISTRY

    tests = " ".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py")
                     if path.name != "test_verdicts.py") + Path(__file__).read_text().split("def test_every_registered")[0]
    untested = [check.code for check in REGISTRY if f'"{check.code}"' not in tests]
    assert untested == []


@pytest.mark.parametrize("driver, extra", [("550.90.07", "cuda12"), ("580.65.06", "cuda13")])
def test_cpu_jax_next_to_a_gpu_gets_the_jax_cuda_wheel_this_driver_runs(machine, driver, extra):
    with_nvidia(machine, driver, gpu(cc="9.0", arch="Hopper"))
    machine.frameworks["jax"] = framework("jax", "0.10.2", variant="cpu", cuda=None, archs=[], devices=("cpu:0",))
    assert f'`pip install -U "jax[{extra}]"`' in finding(machine, "FW006").fix


def test_tensorflow_before_the_and_cuda_extra_names_the_cuda_to_install(machine):
    with_nvidia(machine, "535.183.01", gpu(cc="8.0"))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.13.0", variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    fix = finding(machine, "FW006").fix
    assert "predates the and-cuda extra (2.14)" in fix and "CUDA 11.8 and cuDNN 8.6" in fix


def test_tensorflow_gpu_on_windows_points_to_wsl2(machine):
    machine.machine.host.os = "Windows"
    with_nvidia(machine, "576.02", gpu(cc="8.6"))
    machine.frameworks["tensorflow"] = framework("tensorflow", "2.15.0", variant="cpu", cuda=None, archs=[],
                                                 devices=("/device:CPU:0",))
    assert finding(machine, "FW006").fix.startswith("TensorFlow's GPU build runs only in WSL2 on Windows")

