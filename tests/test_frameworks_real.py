"""The torch and TensorFlow probes, run for real in their children, against the frameworks' own APIs."""

from __future__ import annotations

from importlib import metadata

import pytest

from auditor.probes.proof import TOLERANCE


@pytest.fixture(scope="module")
def torch_api():
    torch = pytest.importorskip("torch")
    return torch


def test_torch_facts_match_torch_apis(real_report, torch_api):
    torch = torch_api
    fw = real_report["frameworks"]["torch"]
    assert fw["probe"]["status"] == "ok"
    assert fw["version"] == torch.__version__
    assert fw["distribution"] == "torch"
    assert fw["distribution_version"] == metadata.version("torch")
    build = fw["build"]
    assert build["cuda_version"] == torch.version.cuda
    assert build["rocm_version"] == torch.version.hip
    assert build["variant"] == ("cuda" if torch.version.cuda else "rocm" if torch.version.hip else "cpu")
    assert build["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert build["mkl"] == torch.backends.mkl.is_available()
    assert build["onednn"] == torch.backends.mkldnn.is_available()
    assert build["openmp"] == torch.backends.openmp.is_available()
    arch_flags = getattr(torch._C, "_cuda_getArchFlags", lambda: "")  # absent from CPU-only builds
    assert build["compiled_architectures"] == ((arch_flags() or "").split() or torch.cuda.get_arch_list())
    assert build["backends_built"] == {"cuda": torch.backends.cuda.is_built(), "mps": torch.backends.mps.is_built(),
                                       "xpu": torch.xpu._is_compiled()}
    assert fw["runtime"]["backends"] == {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(),
                                         "xpu": torch.xpu.is_available()}
    assert fw["runtime"]["threads"] == torch.get_num_threads()
    assert fw["module_path"] == torch.__file__


WORKLOADS = ["matmul", "conv2d", "train-step"]


def _eager_proofs_by_device(fw) -> dict:
    """device -> [(workload, dtype)] of the eager proofs, in the order the probe ran them."""
    table = {}
    for proof in fw["proofs"]:
        if proof["compiler"] is None or fw["name"] == "jax":
            table.setdefault(proof["device"], []).append((proof["workload"], proof["dtype"]))
    return table


def _assert_passed_within_tolerance(proofs):
    for proof in proofs:
        if proof["skipped"]:
            continue
        assert proof["ok"], proof
        assert 0 <= proof["max_relative_error"] < TOLERANCE[proof["dtype"]], proof
        assert proof["seconds"] > 0
        # The larger timed product gives the device's speed; only matmuls carry it.
        assert (proof["gflops"] is not None and proof["gflops"] > 0) == (proof["workload"] == "matmul"), proof


def test_torch_proves_every_workload_on_every_device(real_report, torch_api):
    fw = real_report["frameworks"]["torch"]
    expected = ["cpu"] + [f"cuda:{i}" for i in range(torch_api.cuda.device_count())]
    assert [d["id"] for d in fw["devices"]] == expected
    # The CPU runs float32 and autocast's CPU dtype, bfloat16: each workload in each.
    assert _eager_proofs_by_device(fw)["cpu"] == [(w, d) for w in WORKLOADS for d in ("float32", "bfloat16")]
    _assert_passed_within_tolerance(fw["proofs"])
    # torch.compile takes seconds on a CPU: a full audit says it was left for --deep.
    (deferred,) = [p for p in fw["proofs"] if p["compiler"] == "torch.compile"]
    assert deferred["skipped"].startswith("needs --deep") and not deferred["ok"]


@pytest.fixture(scope="module")
def tf_api():
    return pytest.importorskip("tensorflow")


def test_tensorflow_facts_match_tensorflow_apis(real_report, tf_api):
    tf = tf_api
    fw = real_report["frameworks"]["tensorflow"]
    assert fw["probe"]["status"] == "ok"
    assert fw["version"] == tf.__version__
    assert fw["distribution_version"] == metadata.version(fw["distribution"])
    info = tf.sysconfig.get_build_info()
    assert fw["build"]["variant"] == ("cuda" if info.get("is_cuda_build") else "rocm" if info.get("is_rocm_build") else "cpu")
    assert fw["build"]["cuda_version"] == info.get("cuda_version")
    assert fw["build"]["backends_built"] == {"cuda": tf.test.is_built_with_cuda(), "rocm": tf.test.is_built_with_rocm()}
    devices = [d for d in tf.config.list_physical_devices() if d.device_type in ("CPU", "GPU", "TPU")]
    assert [d["id"] for d in fw["devices"]] == [f"/device:{d.device_type}:{d.name.rsplit(':', 1)[1]}" for d in devices]


def test_tensorflow_proves_eager_workloads_and_xla(real_report, tf_api):
    fw = real_report["frameworks"]["tensorflow"]
    assert _eager_proofs_by_device(fw)["/device:CPU:0"] == [(w, d) for w in WORKLOADS for d in ("float32", "bfloat16")]
    xla = [(p["workload"], p["skipped"] is not None) for p in fw["proofs"] if p["compiler"] == "xla"]
    # XLA compiles the matmul and the convolution in every full audit; the train step waits for --deep.
    assert xla == [("matmul", False), ("conv2d", False), ("train-step", True)]
    _assert_passed_within_tolerance(fw["proofs"])


def test_real_machine_is_ready_with_both_frameworks(real_report):
    readiness = real_report["readiness"]
    statuses = {fw["framework"]: fw["status"] for fw in readiness["frameworks"]}
    assert statuses == {"torch": "ready", "tensorflow": "ready", "jax": "ready"}
    assert readiness["status"] == ("ready" if not [f for f in real_report["findings"] if f["severity"] == "error"] else "not-ready")
    # The choices are the frameworks the goals pick, on the devices they were proven on.
    devices = {"torch": "cpu", "tensorflow": "/device:CPU:0", "jax": "cpu:0"}
    picked = [g["framework"] for g in real_report["recommendation"]["goals"] if g["status"] != "not-ready"]
    choices = real_report["recommendation"]["choices"]
    assert [c["framework"] for c in choices] == list(dict.fromkeys(picked)) and choices
    assert all(c["device"] == devices[c["framework"]] for c in choices)


def test_every_probe_records_status_and_duration(real_report):
    runs = {run["name"]: run for run in real_report["probes"]}
    assert set(runs) == {"packages", "tpu", "host", "python", "cpu", "memory", "pci", "nvidia-kernel", "cuda-toolkit",
                         "amd", "apple", "jetson", "visibility", "tensorflow", "torch", "jax", "nvidia", "amd-smi"}
    for name in ("packages", "host", "python", "cpu", "memory", "pci", "visibility", "tensorflow", "torch", "jax"):
        assert runs[name]["status"] == "ok", runs[name]
    assert runs["torch"]["duration_s"] > 0.1  # it really imported torch in a child
    # No GPU, no TPU, no ROCm, not a Mac: absent with a reason, never an error.
    for name in ("tpu", "nvidia-kernel", "amd", "apple", "jetson", "nvidia", "amd-smi"):
        assert runs[name]["status"] == "absent" and runs[name]["reason"], runs[name]


def test_every_probed_value_names_its_source(real_report):
    machine = real_report["machine"]
    for section in ("host", "cpu", "memory", "python"):
        facts = machine[section]
        missing = [key for key, value in facts.items()
                   # each *_signals entry is itself a statement of where it was seen
                   if key != "sources" and not key.endswith("_signals")
                   and value not in (None, [], {}) and key not in facts["sources"]]
        assert not missing, f"{section}: no source for {missing}"
    for fw in real_report["frameworks"].values():
        assert {"version", "proofs", "devices"} <= set(fw["sources"])


def test_jax_facts_and_proof_match_jax_apis(real_report):
    jax = pytest.importorskip("jax")
    fw = real_report["frameworks"]["jax"]
    assert fw["probe"]["status"] == "ok"
    assert fw["version"] == jax.__version__
    assert fw["distribution_version"] == metadata.version("jax")
    assert fw["build"]["variant"] == jax.default_backend()
    assert fw["build"]["details"]["jaxlib"] == metadata.version("jaxlib")
    assert [d["id"] for d in fw["devices"]] == [f"{d.platform}:{d.id}" for d in jax.devices()]
    assert _eager_proofs_by_device(fw)["cpu:0"] == [(w, d) for w in WORKLOADS for d in ("float32", "bfloat16")]
    _assert_passed_within_tolerance(fw["proofs"])
    assert fw["runtime"]["backend_errors"] == {}  # no TPU signal here, so no TPU was asked for
