"""Faults inside probes that must cost one fact, never the framework, the GPUs or the packages.

- torch without NumPy: torch imports and computes, so it is ready; the proofs need no NumPy.
- A framework that imports but whose probe then fails is FW010 (naming a missing module), not FW001.
- A GPU name that is not UTF-8 costs that field only (the fake NVML serves the bytes).
- Unreadable *.dist-info directories are ENV005 findings, and the other distributions are listed.
- NaN or infinity in a proof or an export comparison is a flagged failure, never a JSON number.

Faults come in through the seams only: the sitecustomize on a child's PYTHONPATH, the fake
libnvidia-ml.so.1, a directory of metadata on PYTHONPATH, and replayed snapshots.
"""

from __future__ import annotations

import json
import os
from array import array
from importlib import metadata
from pathlib import Path

import pytest

import nvml_fake
from auditor.facts import ComputeProof, NvidiaFacts, from_dict
from auditor.probes.child import RunningChild
from auditor.probes.proof import (MATMUL_SIZE, TOLERANCE, Timings, conv2d_case, matmul_case, prove_device,
                                  relative_error, train_case)
from auditor.probes.turns import Turn
from conftest import run_auditor
from nvml_fake import h100_node, h100_uuid, nvml_env, without_nvidia_smi

fake_nvml_dir = nvml_fake.fake_nvml_dir  # the session fixture that builds the fake libnvidia-ml.so.1

SEAM = Path(__file__).parent / "fakes" / "sitecustomize"
SNAPSHOTS = Path(__file__).parent / "snapshots"
WORKLOADS = ("matmul", "conv2d", "train-step")


def _reject_constant(name: str):
    raise AssertionError(f"{name} in the output: reports must be strict JSON")


def strict_json(text: str) -> dict:
    return json.loads(text, parse_constant=_reject_constant)


def seam_env(**faults: str) -> dict[str, str]:
    return {**os.environ, **faults, "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SEAM), os.environ.get("PYTHONPATH")]))}


def audit(env: dict[str, str], *args: str) -> dict:
    result = run_auditor("audit", "--format", "json", *args, env=env)
    assert result.returncode in (0, 1), result.stderr
    return strict_json(result.stdout)


def findings(report: dict, code: str) -> list[dict]:
    return [f for f in report["findings"] if f["code"] == code]


def readiness(report: dict) -> dict[str, dict]:
    return {fw["framework"]: fw for fw in report["readiness"]["frameworks"]}


# --- torch without NumPy ---------------------------------------------------------------


def test_torch_without_numpy_is_ready_with_every_proof_passing():
    pytest.importorskip("torch")
    report = audit(seam_env(AUDITOR_TEST_HIDE="numpy"))

    torch = report["frameworks"]["torch"]
    assert torch["probe"]["status"] == "ok" and torch["probe_error"] is None
    cpu = [(p["workload"], p["dtype"]) for p in torch["proofs"] if p["device"] == "cpu" and p["compiler"] is None]
    assert cpu == [(w, d) for w in WORKLOADS for d in ("float32", "bfloat16")]
    for proof in torch["proofs"]:
        if not proof["skipped"]:
            assert proof["ok"], proof
            assert 0 <= proof["max_relative_error"] < TOLERANCE[proof["dtype"]], proof
    assert readiness(report)["torch"]["status"] == "ready"
    # FW001 only for the frameworks whose own import fails: TensorFlow and JAX need NumPy to import.
    failed_imports = {f["evidence"][0].split(":")[0].removeprefix("probe ") for f in findings(report, "FW001")}
    assert "torch" not in failed_imports
    if "tensorflow" in report["frameworks"]:
        assert "tensorflow" in failed_imports
        (tensorflow,) = [f for f in findings(report, "FW001") if f["evidence"][0].startswith("probe tensorflow:")]
        assert "No module named 'numpy'" in tensorflow["evidence"][0]


def test_torch_whose_training_step_needs_a_missing_module_names_it():
    """torch imports without sympy (its requirement), but torch.optim cannot step without it:
    the train step fails, naming sympy and its install; matmul and conv2d still pass."""
    pytest.importorskip("torch")
    # Hiding TensorFlow and JAX too stops their probes at the import, which keeps this test short.
    report = audit(seam_env(AUDITOR_TEST_HIDE="sympy,tensorflow,jax"))

    torch = report["frameworks"]["torch"]
    assert torch["probe"]["status"] == "ok"
    cpu = {(p["workload"], p["dtype"]): p for p in torch["proofs"] if p["device"] == "cpu" and p["compiler"] is None}
    assert all(cpu[("matmul", d)]["ok"] and cpu[("conv2d", d)]["ok"] for d in ("float32", "bfloat16"))
    step = cpu[("train-step", "float32")]
    assert (step["ok"], step["missing_module"], step["error"]) == (
        False, "sympy", "ModuleNotFoundError: No module named 'sympy'")
    (fw004,) = [f for f in findings(report, "FW004") if f["title"].startswith("torch")]
    assert "No module named 'sympy'" in fw004["evidence"][0]
    assert "`pip install sympy`" in fw004["fix"]
    assert not [f for f in findings(report, "FW001") if f["evidence"][0].startswith("probe torch:")]


def test_a_framework_that_imports_but_cannot_list_its_devices_is_fw010_not_fw001():
    """JAX_PLATFORMS names a backend this JAX lacks: `import jax` works, jax.devices() raises."""
    pytest.importorskip("jax")
    report = audit(seam_env(AUDITOR_TEST_HIDE="torch,tensorflow", JAX_PLATFORMS="rocm"))

    jax = report["frameworks"]["jax"]
    if jax["devices"]:
        pytest.skip("this JAX has a ROCm backend")
    assert jax["probe"]["status"] == "ok"
    assert jax["version"] == metadata.version("jax")
    assert jax["probe_error"].startswith("RuntimeError: Unable to initialize backend 'rocm'")
    assert jax["missing_module"] is None and jax["proofs"] == []
    (fw010,) = findings(report, "FW010")
    assert fw010["severity"] == "warning"
    assert fw010["title"] == f"jax {jax['version']} imports, but probing it failed"
    assert "Unable to initialize backend 'rocm'" in fw010["evidence"][0]
    assert "JAX_PLATFORMS" in fw010["fix"]
    assert not [f for f in findings(report, "FW001") if f["evidence"][0].startswith("probe jax:")]
    assert readiness(report)["jax"]["status"] != "not-importable"


def test_a_missing_module_after_the_import_is_named_with_its_install():
    """FW010 through a replayed snapshot: the probe found a module missing after the import."""
    snapshot = json.loads((SNAPSHOTS / "v1.0-cpu-only-linux.json").read_text())
    torch = snapshot["frameworks"]["torch"]
    torch.update(build=None, runtime=None, devices=[], proofs=[], probe_error="ModuleNotFoundError: No module named "
                 "'optree'", missing_module="optree")
    report = replay(snapshot)
    (fw010,) = findings(report, "FW010")
    assert fw010["title"] == f"torch {torch['version']} imports, but probing it needs optree, which is not installed"
    assert "`pip install optree`" in fw010["fix"]


# --- NVML text that is not UTF-8 ---------------------------------------------------------


def _h100_with(replacements: dict[int, tuple[str, str]]) -> str:
    """The 8x H100 node with one text value replaced on the given GPUs' lines."""
    lines = h100_node().splitlines()
    gpu_lines = [i for i, line in enumerate(lines) if line.startswith("gpu ")]
    for gpu, (old, new) in replacements.items():
        assert old in lines[gpu_lines[gpu]]
        lines[gpu_lines[gpu]] = lines[gpu_lines[gpu]].replace(old, new)
    return "\n".join(lines) + "\n"


def test_a_gpu_name_that_is_not_utf8_costs_that_field_only(fake_nvml_dir, tmp_path):
    description = _h100_with({1: ('name="NVIDIA H100 80GB HBM3"', r'name="NVIDIA H100\xff\xfe 80GB HBM3"'),
                              2: ("bus=00000000:3A:00.0", r"bus=00000000:3A:00.0\xc0")})
    env = without_nvidia_smi(nvml_env(description, tmp_path), tmp_path)
    outcome = RunningChild("auditor.probes.nvml_child", 20.0, env).wait()

    assert outcome.status == "ok", outcome.reason
    facts = from_dict(NvidiaFacts, outcome.payload)
    assert [gpu.uuid for gpu in facts.gpus] == [h100_uuid(i) for i in range(8)]  # every GPU, every UUID
    assert facts.gpus[1].name == "NVIDIA H100\ufffd\ufffd 80GB HBM3"
    assert facts.gpus[1].not_utf8 == ["nvmlDeviceGetName"]
    assert facts.gpus[2].pci_bus_id == "00000000:3A:00.0\ufffd"
    assert facts.gpus[2].not_utf8 == ["nvmlDeviceGetPciInfo_v3 busId"]
    for gpu in facts.gpus:
        assert gpu.errors == [] and gpu.compute_capability == "9.0" and gpu.memory_total_bytes
        if gpu.index not in (1, 2):
            assert gpu.name == "NVIDIA H100 80GB HBM3" and gpu.not_utf8 == []
    assert facts.not_utf8 == [] and facts.driver_version == "570.86.15"


def test_a_driver_version_that_is_not_utf8_is_flagged_and_the_gpus_are_kept(fake_nvml_dir, tmp_path):
    description = h100_node().replace("driver 570.86.15", r"driver 570.86.\xff")
    env = without_nvidia_smi(nvml_env(description, tmp_path), tmp_path)
    result = run_auditor("audit", "--format", "json", "--quick", env=env)

    assert result.returncode in (0, 1), result.stderr
    nvidia = strict_json(result.stdout)["accelerators"]["nvidia"]
    assert (nvidia["driver_version"], nvidia["not_utf8"]) == ("570.86.\ufffd", ["nvmlSystemGetDriverVersion"])
    assert len(nvidia["gpus"]) == 8


# --- unreadable package metadata ----------------------------------------------------------


def _dist_info(site: Path, directory: str, files: dict[str, bytes | None]) -> Path:
    """A metadata directory; a file given as None is made a directory instead."""
    path = site / directory
    path.mkdir()
    for name, content in files.items():
        if content is None:
            (path / name).mkdir()
        else:
            (path / name).write_bytes(content)
    return path


def test_unreadable_dist_infos_are_findings_and_hide_no_other_distribution(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    good = _dist_info(site, "onnxruntime_openvino-1.23.0.dist-info", {
        "METADATA": b"Metadata-Version: 2.1\nName: onnxruntime-openvino\nVersion: 1.23.0\n",
        "top_level.txt": b"onnxruntime\n", "INSTALLER": b"pip\n"})
    broken = {
        _dist_info(site, "binary-2.0.dist-info", {"METADATA": b"Metadata-Version: 2.1\nName: bin\xff\xfe\x00ary\n"}):
            "METADATA: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 31: invalid start byte",
        _dist_info(site, "noversion-3.0.dist-info", {"METADATA": b"Metadata-Version: 2.1\nName: noversion\n"}):
            "METADATA has no Version",
        _dist_info(site, "metadir-4.0.dist-info", {"METADATA": None}): "METADATA is a directory, not a file",
        _dist_info(site, "leftover-5.0.dist-info", {}): "no METADATA file",
        # An ML distribution whose RECORD is damaged is still listed; its modules are then unknown.
        _dist_info(site, "tflite_runtime-2.14.0.dist-info", {
            "METADATA": b"Metadata-Version: 2.1\nName: tflite-runtime\nVersion: 2.14.0\n",
            "RECORD": b"tflite_runtime/\xff.py,,\n"}):
            "RECORD: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 15: invalid start byte",
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    report = audit(env, "--quick")

    assert next(run for run in report["probes"] if run["name"] == "packages")["status"] == "ok"
    packages = report["packages"]
    assert (packages["onnxruntime-openvino"]["version"], packages["onnxruntime-openvino"]["location"],
            packages["onnxruntime-openvino"]["modules"]) == ("1.23.0", str(site), ["onnxruntime"])
    assert (packages["tflite-runtime"]["version"], packages["tflite-runtime"]["modules"]) == ("2.14.0", [])
    for installed in ("numpy", "nvidia-ml-py"):  # the real environment's, read as usual
        assert packages[installed]["version"] == metadata.version(installed)
    assert {(u["path"], u["problem"]) for u in report["unreadable_distributions"]} == {
        (str(path), problem) for path, problem in broken.items()}
    assert str(good) not in {u["path"] for u in report["unreadable_distributions"]}
    env005 = {f["evidence"][0]: f for f in findings(report, "ENV005")}
    assert set(env005) == {f"{path}: {problem} (importlib.metadata)" for path, problem in broken.items()}
    leftover = env005[f"{site / 'leftover-5.0.dist-info'}: no METADATA file (importlib.metadata)"]
    assert leftover["severity"] == "warning"
    assert leftover["title"] == "Unreadable package metadata: leftover-5.0.dist-info (no METADATA file)"
    assert leftover["fix"].endswith("pip install --force-reinstall --no-deps leftover==5.0`")


def test_the_real_environment_has_no_unreadable_metadata(real_report):
    assert real_report["unreadable_distributions"] == []
    assert findings(real_report, "ENV005") == []


# --- NaN and infinity -------------------------------------------------------------------


class PoisonedKernels:
    """Answers each workload with its exact reference, one value replaced: what a device
    whose kernel overflows (inf) or divides zero by zero (NaN) would hand back."""

    def __init__(self, poison: float):
        self.poison = poison

    def _answer(self, reference):
        values = array("d", reference)
        values[len(values) // 2] = self.poison
        return values, "cpu"

    def matmul(self, a, b, dtype):
        return self._answer(matmul_case()[-1])

    def conv2d(self, x, kernel, dtype):
        return self._answer(conv2d_case()[-1])

    def train_step(self, params, x, target, learning_rate, dtype):
        return self._answer(train_case()[-1])

    def matmul_on_device(self, size, dtype):
        return lambda: None


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_result_is_a_flagged_failure_not_a_json_number(poison):
    timings = Timings(Turn(None))
    proofs = prove_device("cpu", "cpu", PoisonedKernels(poison), ("float32",), timings)
    timings.measure()  # owes nothing: no matmul passed

    assert [p["workload"] for p in proofs] == list(WORKLOADS)
    sizes = {"matmul": MATMUL_SIZE ** 2, "conv2d": 2 * 16 * 16 * 8, "train-step": 16 * 32 + 32 + 32 * 4 + 4}
    for proof in proofs:
        assert (proof["ok"], proof["max_relative_error"], proof["non_finite"]) == (False, None, True)
        assert proof["error"] == f"1 of the {sizes[proof['workload']]} result values are NaN or infinite"
        assert "gflops" not in proof
        assert from_dict(ComputeProof, proof).failed
    strict_json(json.dumps(proofs, allow_nan=False))


def test_relative_error_is_exact_and_none_for_non_finite_results():
    assert relative_error([1.0, 2.0, -4.0], [1.0, 2.0, -4.0]) == 0.0
    assert relative_error([1.0, 2.5, -4.0], [1.0, 2.0, -4.0]) == 0.125  # 0.5 off, scale 4
    assert relative_error([0.5], [0.0]) == 0.5  # an all-zero reference has scale 1
    assert relative_error([1.0, float("nan")], [1.0, 2.0]) is None
    assert relative_error([float("inf"), 2.0], [1.0, 2.0]) is None


def replay(snapshot: dict) -> dict:
    """The report a snapshot replays into, through the CLI."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(snapshot, file, allow_nan=False)
    try:
        result = run_auditor("audit", "--snapshot", file.name, "--format", "json")
    finally:
        os.unlink(file.name)
    assert result.returncode in (0, 1), result.stderr
    return strict_json(result.stdout)


def test_a_snapshot_proof_flagged_non_finite_fails_even_if_it_says_ok():
    snapshot = json.loads((SNAPSHOTS / "v1.0-cpu-only-linux.json").read_text())
    matmul = snapshot["frameworks"]["torch"]["proofs"][0]
    assert (matmul["device"], matmul["dtype"], matmul["ok"]) == ("cpu", "float32", True)
    matmul.update(max_relative_error=None, non_finite=True, error="1 of the 65536 result values are NaN or infinite")
    report = replay(snapshot)

    (fw004,) = findings(report, "FW004")
    assert fw004["title"].startswith("torch ") and "matmul 256x256 on cpu failed" in fw004["title"]
    assert "NaN or infinite" in fw004["evidence"][0]
    assert readiness(report)["torch"]["status"] == "broken"
    assert report["frameworks"]["torch"]["proofs"][0]["ok"] is False


def test_an_export_output_that_is_not_finite_breaks_the_path_with_a_flag():
    np = pytest.importorskip("numpy")
    from auditor.probes.exports.common import PathCheck

    check = PathCheck("onnx", "torch")
    with check.running():
        check.compare(np.array([[1.0, np.nan]], dtype=np.float32), np.array([[1.0, 2.0]], dtype=np.float32))
    path = check.result()
    assert (path["status"], path["max_relative_error"], path["non_finite"]) == ("broken", None, True)
    assert path["error"] == "compare failed: the target runtime's output holds NaN or infinity"
    assert path["stages"][-1]["name"] == "compare" and not path["stages"][-1]["ok"]
    strict_json(json.dumps(path, allow_nan=False))

    check = PathCheck("onnx", "torch")
    with check.running():
        check.compare(np.array([[1.0, 2.0]], dtype=np.float32), np.array([[1.0, 2.0]], dtype=np.float32))
    assert (check.path.status, check.path.max_relative_error, check.path.non_finite) == ("ready", 0.0, False)
