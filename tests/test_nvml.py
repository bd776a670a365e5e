"""The NVIDIA probe (auditor/probes/nvml_child.py) against a fake driver, end to end.

The probe runs as it does in an audit: in a child process, through pynvml, which loads
a real shared library (tests/fakes/nvml/fake_nvml.c, compiled here) from LD_LIBRARY_PATH;
the nvidia-smi fallback runs fake executables from tests/fakes/nvidia-smi/ found on PATH.
Nothing is patched.
"""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.facts import NvidiaFacts, from_dict
from auditor.probes import nvidia_smi
from auditor.probes.child import ChildOutcome, RunningChild
from auditor.probes.nvml_child import TIMEOUT_ENV
from auditor.probes.registry import CHILD_PROBES
import nvml_fake
from nvml_fake import (H100_MIG, H100_TOTAL, MIB, RTX_5090, calls, gpu_line, h100_node, h100_uuid, nvml_env,
                       with_nvidia_smi, without_fake_nvml, without_nvidia_smi)

fake_nvml_dir = nvml_fake.fake_nvml_dir  # the session fixture that builds the fake libnvidia-ml.so.1

MODULE = "auditor.probes.nvml_child"
PROBE = next(probe for probe in CHILD_PROBES if probe.provides == "accelerators.nvidia")


def run_probe(env: dict[str, str], deadline_s: float = 20.0) -> ChildOutcome:
    return RunningChild(MODULE, deadline_s, env).wait()


def ok_facts(outcome: ChildOutcome) -> NvidiaFacts:
    assert outcome.status == "ok", outcome.reason
    return from_dict(NvidiaFacts, outcome.payload)  # the payload honours the facts contract


@pytest.fixture
def h100(fake_nvml_dir, tmp_path):
    """Probe the 8x H100 node with extra description lines appended; its typed facts."""

    def probe(extra: str = "") -> NvidiaFacts:
        return ok_facts(run_probe(without_nvidia_smi(nvml_env(h100_node(extra), tmp_path), tmp_path)))

    return probe


# --- NVML answers -------------------------------------------------------------------


def test_h100_node_with_mig_reports_every_field(fake_nvml_dir, tmp_path):
    env = without_nvidia_smi(nvml_env(h100_node(), tmp_path, log=True), tmp_path)
    outcome = run_probe(env)
    facts = ok_facts(outcome)

    assert (facts.source, facts.driver_version, facts.cuda_driver_version, facts.nvml_version, facts.nvml_error) == (
        "nvml", "570.86.15", "12.8", "12.570.86.15", None)
    assert [gpu.index for gpu in facts.gpus] == list(range(8))
    assert len({gpu.uuid for gpu in facts.gpus}) == 8
    assert all(gpu.errors == [] for gpu in facts.gpus)

    gpu0 = facts.gpus[0]
    assert gpu0.name == "NVIDIA H100 80GB HBM3"
    assert gpu0.uuid == h100_uuid(0)
    assert gpu0.brand == "NVIDIA"
    assert gpu0.architecture == "Hopper"
    assert gpu0.compute_capability == "9.0"
    assert gpu0.memory_total_bytes == H100_TOTAL == 85520809984
    assert gpu0.memory_free_bytes == H100_TOTAL - 512 * MIB
    assert gpu0.pci_bus_id == "00000000:18:00.0"
    assert (gpu0.mig_mode_current, gpu0.mig_mode_pending) == (True, True)
    assert [(mig.index, mig.uuid, mig.memory_total_bytes) for mig in gpu0.mig_instances] == H100_MIG  # slot 2 empty
    assert gpu0.compute_mode == "Default"
    assert gpu0.power_limit_watts == 700.0
    assert gpu0.default_power_limit_watts == 700.0
    assert gpu0.process_count == 0

    gpu7 = facts.gpus[7]
    assert gpu7.name == "NVIDIA H100 80GB HBM3"
    assert gpu7.uuid == h100_uuid(7)
    assert gpu7.brand == "NVIDIA"
    assert gpu7.architecture == "Hopper"
    assert gpu7.compute_capability == "9.0"
    assert gpu7.memory_total_bytes == H100_TOTAL
    assert gpu7.memory_free_bytes == H100_TOTAL - 8 * 512 * MIB
    assert gpu7.pci_bus_id == "00000000:DB:00.0"
    assert (gpu7.mig_mode_current, gpu7.mig_mode_pending) == (False, True)  # enabled at the next reset
    assert gpu7.mig_instances == []
    assert gpu7.compute_mode == "Exclusive_Process"
    assert gpu7.power_limit_watts == 700.0
    assert gpu7.process_count == 3
    assert [gpu.process_count for gpu in facts.gpus] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [gpu.mig_mode_current for gpu in facts.gpus] == [True] + [False] * 7

    assert facts.sources["cuda_driver_version"] == "nvmlSystemGetCudaDriverVersion_v2"
    assert facts.sources["gpus.power_limit_watts"].startswith("nvmlDeviceGetPowerManagementLimit")
    assert facts.sources["gpus.default_power_limit_watts"].startswith("nvmlDeviceGetPowerManagementDefaultLimit")
    log = calls(tmp_path)
    assert log[0] == "nvmlInitWithFlags" and log[-1] == "nvmlShutdown"
    assert log.count("nvmlShutdown") == 1
    # MIG devices are looked up only on the GPU in MIG mode, slot by slot up to the maximum.
    assert log.count("nvmlDeviceGetMigDeviceHandleByIndex") == 7
    assert outcome.payload["gpus"][0]["memory_total_bytes"] == 85520809984  # a JSON int, not a float


def test_rtx_5090_is_a_geforce_blackwell_without_mig(fake_nvml_dir, tmp_path):
    facts = ok_facts(run_probe(without_nvidia_smi(nvml_env(RTX_5090, tmp_path), tmp_path)))

    assert (facts.driver_version, facts.cuda_driver_version, facts.nvml_version) == (
        "575.51.02", "12.9", "12.575.51.02")
    (gpu,) = facts.gpus
    assert (gpu.name, gpu.brand, gpu.architecture, gpu.compute_capability) == (
        "NVIDIA GeForce RTX 5090", "GeForce", "Blackwell", "12.0")
    assert (gpu.memory_total_bytes, gpu.memory_free_bytes) == (32607 * MIB, 31000 * MIB)
    assert gpu.pci_bus_id == "00000000:01:00.0"
    # GeForce has no MIG: NVML_ERROR_NOT_SUPPORTED is "no such thing", not an error.
    assert (gpu.mig_mode_current, gpu.mig_mode_pending, gpu.mig_instances) == (None, None, [])
    assert (gpu.compute_mode, gpu.power_limit_watts, gpu.process_count, gpu.errors) == ("Default", 575.0, 1, [])


@pytest.mark.parametrize("brand, arch, expected", [
    (1, 6, ("Quadro", "Turing")), (2, 5, ("Tesla", "Volta")), (6, 4, ("Titan", "Pascal")),
    (13, 8, ("NVIDIA RTX", "Ada")), (12, 7, ("Quadro RTX", "Ampere")), (0, 0xFFFFFFFF, (None, None)),
])
def test_brand_and_architecture_names(fake_nvml_dir, tmp_path, brand, arch, expected):
    description = "driver 550.54.15\n" + gpu_line(name="GPU", uuid="GPU-1", brand=brand, arch=arch) + "\n"
    (gpu,) = ok_facts(run_probe(without_nvidia_smi(nvml_env(description, tmp_path), tmp_path))).gpus
    assert (gpu.brand, gpu.architecture) == expected


def test_a_lost_gpu_is_listed_with_its_error_and_the_others_are_complete(h100):
    facts = h100("fail gpu=1 nvmlDeviceGetHandleByIndex=15\n")  # NVML_ERROR_GPU_IS_LOST

    assert len(facts.gpus) == 8
    lost = facts.gpus[1]
    assert lost.index == 1
    assert lost.errors == ["nvmlDeviceGetHandleByIndex: GPU is lost"]
    assert (lost.name, lost.uuid, lost.memory_total_bytes, lost.pci_bus_id) == (None, None, None, None)
    for gpu in (facts.gpus[0], *facts.gpus[2:]):
        assert gpu.errors == []
        assert gpu.uuid == h100_uuid(gpu.index)
        assert gpu.memory_total_bytes == H100_TOTAL and gpu.power_limit_watts == 700.0
    assert len(facts.gpus[0].mig_instances) == 3


def test_power_limit_not_supported_is_none_without_an_error(h100):
    facts = h100("fail gpu=0 nvmlDeviceGetPowerManagementLimit=3\n")  # NVML_ERROR_NOT_SUPPORTED

    assert facts.gpus[0].power_limit_watts is None
    assert facts.gpus[0].errors == []
    assert facts.gpus[0].memory_total_bytes == H100_TOTAL  # everything else still read
    assert facts.gpus[1].power_limit_watts == 700.0


def test_a_power_limit_set_below_the_default_reads_as_both(fake_nvml_dir, tmp_path):
    description = "driver 550.54.15\n" + gpu_line(name="NVIDIA H100 80GB HBM3", uuid="GPU-1", power_mw=450000,
                                                   power_default_mw=700000) + "\n"
    (gpu,) = ok_facts(run_probe(without_nvidia_smi(nvml_env(description, tmp_path), tmp_path))).gpus
    assert (gpu.power_limit_watts, gpu.default_power_limit_watts, gpu.errors) == (450.0, 700.0, [])


def test_default_power_limit_not_supported_is_none_and_a_refusal_is_recorded(h100):
    facts = h100("fail gpu=0 nvmlDeviceGetPowerManagementDefaultLimit=3\n"  # NVML_ERROR_NOT_SUPPORTED
                 "fail gpu=1 nvmlDeviceGetPowerManagementDefaultLimit=999\n")

    assert (facts.gpus[0].default_power_limit_watts, facts.gpus[0].errors) == (None, [])
    assert facts.gpus[1].default_power_limit_watts is None
    assert facts.gpus[1].errors == ["nvmlDeviceGetPowerManagementDefaultLimit: Unknown Error"]
    assert facts.gpus[0].power_limit_watts == facts.gpus[2].default_power_limit_watts == 700.0


def test_refused_queries_are_recorded_per_gpu_and_the_rest_is_read(h100):
    facts = h100("fail gpu=0 nvmlDeviceGetMemoryInfo=4\n"  # NVML_ERROR_NO_PERMISSION
                 "fail gpu=0 mig=1 nvmlDeviceGetUUID=999\n"  # one MIG device's UUID
                 "fail gpu=3 nvmlDeviceGetComputeRunningProcesses=999\n"
                 "fail gpu=5 nvmlDeviceGetMigMode=15\n")

    gpu0 = facts.gpus[0]
    assert gpu0.errors == ["nvmlDeviceGetMemoryInfo: Insufficient Permissions",
                           "nvmlDeviceGetUUID(MIG 1): Unknown Error"]
    assert (gpu0.memory_total_bytes, gpu0.memory_free_bytes) == (None, None)
    assert [(mig.index, mig.uuid) for mig in gpu0.mig_instances] == [
        (0, H100_MIG[0][1]), (1, None), (3, H100_MIG[2][1])]
    assert gpu0.mig_instances[1].memory_total_bytes == H100_MIG[1][2]  # the MIG device's own memory still read
    assert (gpu0.name, gpu0.power_limit_watts, gpu0.mig_mode_current) == ("NVIDIA H100 80GB HBM3", 700.0, True)
    assert facts.gpus[3].errors == ["nvmlDeviceGetComputeRunningProcesses: Unknown Error"]
    assert facts.gpus[3].process_count is None
    assert facts.gpus[5].errors == ["nvmlDeviceGetMigMode: GPU is lost"]
    assert (facts.gpus[5].mig_mode_current, facts.gpus[5].mig_mode_pending) == (None, None)
    assert all(gpu.errors == [] for gpu in facts.gpus if gpu.index not in (0, 3, 5))


def test_a_failed_system_query_leaves_its_field_none_and_says_why(h100):
    facts = h100("fail nvmlSystemGetCudaDriverVersion=999\n")

    assert facts.cuda_driver_version is None
    assert facts.errors == ["nvmlSystemGetCudaDriverVersion_v2: Unknown Error"]
    assert facts.sources["cuda_driver_version"] == "nvmlSystemGetCudaDriverVersion_v2"
    assert facts.driver_version == "570.86.15" and len(facts.gpus) == 8


# --- NVLink and peer to peer --------------------------------------------------------


def test_nvlinks_and_peer_to_peer_status_of_each_gpu_pair(fake_nvml_dir, tmp_path):
    description = "\n".join([
        "driver 570.86.15",
        gpu_line(name="NVIDIA H100 80GB HBM3", uuid=h100_uuid(0), nvlinks=18),
        gpu_line(name="NVIDIA H100 80GB HBM3", uuid=h100_uuid(1), nvlinks=12, nvlink_max=18),  # six links down
        gpu_line(name="NVIDIA L4", uuid="GPU-0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"),  # PCIe only: no NVLink
        "p2p gpu=0 peer=1 read=0 nvlink=0",
        "p2p gpu=2 peer=0 read=3 nvlink=5",  # IOH_TOPOLOGY_NOT_SUPPORTED, NOT_SUPPORTED
        # GPUs 1 and 2: not described, so the driver answers NOT_SUPPORTED for both capabilities
    ]) + "\n"
    facts = ok_facts(run_probe(without_nvidia_smi(nvml_env(description, tmp_path, log=True), tmp_path)))

    assert [(gpu.nvlinks_active, gpu.nvlinks_total) for gpu in facts.gpus] == [(18, 18), (12, 18), (None, None)]
    assert [(pair.gpu, pair.peer, pair.read, pair.nvlink) for pair in facts.p2p] == [
        (0, 1, "ok", "ok"), (0, 2, "topology-not-supported", "not-supported"), (1, 2, None, None)]
    assert facts.errors == [] and all(gpu.errors == [] for gpu in facts.gpus)  # not supported is no failure
    assert facts.sources["p2p"].startswith("nvmlDeviceGetP2PStatus")
    # Link by link up to the last one each GPU has; the L4 answers NOT_SUPPORTED for its first.
    assert calls(tmp_path).count("nvmlDeviceGetNvLinkState") == 19 + 19 + 1
    assert calls(tmp_path).count("nvmlDeviceGetP2PStatus") == 3 * 2


def test_a_node_without_nvlink_or_p2p_answers_reads_as_unknown(h100):
    facts = h100()

    assert all((gpu.nvlinks_active, gpu.nvlinks_total) == (None, None) for gpu in facts.gpus)
    assert len(facts.p2p) == 8 * 7 // 2
    assert all((pair.read, pair.nvlink) == (None, None) for pair in facts.p2p)
    assert facts.errors == [] and all(gpu.errors == [] for gpu in facts.gpus)


def test_refused_nvlink_and_p2p_queries_are_recorded_and_a_lost_gpu_has_no_pairs(h100):
    facts = h100("fail gpu=2 nvmlDeviceGetNvLinkState=999\n"
                 "fail gpu=0 nvmlDeviceGetP2PStatus=999\n"  # asked about GPU 0 first: its pairs
                 "fail gpu=1 nvmlDeviceGetHandleByIndex=15\n")

    assert facts.gpus[2].errors == ["nvmlDeviceGetNvLinkState(link 0): Unknown Error"]
    assert facts.gpus[2].nvlinks_active is None
    assert facts.errors == [f"nvmlDeviceGetP2PStatus(0, {peer}, {index}): Unknown Error"
                            for peer in range(2, 8) for index in ("READ", "NVLINK")]
    assert {(pair.gpu, pair.peer) for pair in facts.p2p} == {
        (gpu, peer) for gpu in range(8) for peer in range(gpu + 1, 8) if 1 not in (gpu, peer)}


# --- nvmlInit fails -------------------------------------------------------------------


def test_nvml_init_error_without_nvidia_smi_is_an_error_naming_it(fake_nvml_dir, tmp_path):
    env = without_nvidia_smi(nvml_env(h100_node("fail nvmlInit=999\n"), tmp_path, log=True), tmp_path)
    outcome = run_probe(env)

    assert outcome.status == "error"
    assert "nvmlInit failed: Unknown Error (NVML_ERROR_UNKNOWN)" in outcome.reason
    assert "nvidia-smi is not on PATH" in outcome.reason
    assert calls(tmp_path) == ["nvmlInitWithFlags"]  # no shutdown without a successful init


def test_nvml_init_error_falls_back_to_nvidia_smi(fake_nvml_dir, tmp_path):
    env = with_nvidia_smi(nvml_env(h100_node("fail nvmlInit=999\n"), tmp_path), "good", tmp_path)
    facts = ok_facts(run_probe(env))

    assert facts.source == "nvidia-smi"
    assert facts.nvml_error == "nvmlInit failed: Unknown Error (NVML_ERROR_UNKNOWN)"
    assert (facts.driver_version, facts.cuda_driver_version, facts.nvml_version) == ("550.54.15", "12.4", None)
    assert facts.sources["gpus.memory_total_bytes"].startswith("nvidia-smi --query-gpu=memory.total")
    gpu0, gpu1 = facts.gpus
    assert (gpu0.index, gpu0.uuid, gpu0.name) == (
        0, "GPU-5f1ff6b5-2c1e-6a3b-8e5c-1c0a9d3f4b21", "NVIDIA A100-SXM4-80GB")
    assert (gpu0.memory_total_bytes, gpu0.memory_free_bytes) == (81920 * MIB, 81050 * MIB)
    assert (gpu0.compute_capability, gpu0.pci_bus_id) == ("8.0", "00000000:07:00.0")
    assert (gpu0.mig_mode_current, gpu0.mig_mode_pending, gpu0.compute_mode, gpu0.power_limit_watts) == (
        True, True, "Default", 400.0)
    assert (gpu0.brand, gpu0.architecture, gpu0.process_count, gpu0.errors) == (None, None, None, [])
    assert (gpu1.index, gpu1.mig_mode_current, gpu1.mig_mode_pending, gpu1.compute_mode) == (
        1, False, True, "Exclusive_Process")
    assert gpu1.power_limit_watts is None  # [N/A]
    assert gpu0.default_power_limit_watts == gpu1.default_power_limit_watts == 400.0
    assert facts.sources["gpus.default_power_limit_watts"] == "nvidia-smi --query-gpu=power.default_limit (W)"
    assert gpu1.memory_free_bytes == 80879 * MIB
    assert facts.p2p is None and gpu0.nvlinks_active is None  # nvidia-smi's answers hold neither: not read


def test_hanging_nvidia_smi_is_killed_at_the_fallback_deadline(fake_nvml_dir, tmp_path):
    pids = tmp_path / "smi.pids"
    env = with_nvidia_smi(nvml_env(None, tmp_path), "hang", tmp_path)  # NVML: driver not loaded
    env.update({TIMEOUT_ENV: "1", "FAKE_NVIDIA_SMI_PIDFILE": str(pids)})
    started = time.monotonic()
    outcome = run_probe(env, deadline_s=20)
    elapsed = time.monotonic() - started

    assert outcome.status == "error"
    assert "nvidia-smi did not answer within the 1 s deadline" in outcome.reason
    assert "kernel driver is not loaded" in outcome.reason
    assert elapsed < 1 + 3.0, elapsed  # the fallback deadline, not the probe's 20 s
    started_pids = [int(pid) for pid in pids.read_text().split()]
    assert 1 <= len(started_pids) <= 3  # the CSV query, and the table and the list it runs alongside
    for pid in started_pids:  # killed and reaped, none left behind
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_garbage_from_nvidia_smi_is_an_error_quoting_it(fake_nvml_dir, tmp_path):
    env = with_nvidia_smi(nvml_env(h100_node("fail nvmlInit=18\n"), tmp_path), "garbage", tmp_path)
    outcome = run_probe(env)

    assert outcome.status == "error"
    assert "NVML_ERROR_LIB_RM_VERSION_MISMATCH" in outcome.reason
    assert "nvidia-smi output could not be parsed" in outcome.reason
    assert "Segmentation fault in libnvidia-ml" in outcome.reason


def test_nvidia_smi_that_cannot_reach_the_driver_either_means_absent(fake_nvml_dir, tmp_path):
    env = with_nvidia_smi(nvml_env(None, tmp_path), "failing", tmp_path)
    outcome = run_probe(env)

    assert outcome.status == "absent"
    assert "kernel driver is not loaded" in outcome.reason
    assert "nvidia-smi exited with status 9" in outcome.reason


def test_nvidia_smi_failing_after_another_nvml_error_is_an_error(fake_nvml_dir, tmp_path):
    env = with_nvidia_smi(nvml_env(h100_node("fail nvmlInit=999\n"), tmp_path), "failing", tmp_path)
    outcome = run_probe(env)

    assert outcome.status == "error"
    assert outcome.reason.startswith("NvidiaUnavailable: nvmlInit failed: Unknown Error (NVML_ERROR_UNKNOWN); "
                                     "nvidia-smi fallback: nvidia-smi exited with status 9")


def test_library_without_a_machine_is_a_driver_not_loaded(fake_nvml_dir, tmp_path):
    outcome = run_probe(without_nvidia_smi(nvml_env(None, tmp_path), tmp_path))

    assert outcome.status == "absent"
    assert outcome.reason == ("NVML is installed but the NVIDIA kernel driver is not loaded, "
                              "and nvidia-smi is not on PATH")


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has a real NVML library")
def test_no_library_at_all_is_absent_and_fast(fake_nvml_dir, tmp_path):
    env = without_nvidia_smi(without_fake_nvml(nvml_env(h100_node(), tmp_path)), tmp_path)
    outcome = run_probe(env)

    assert outcome.status == "absent"
    assert "libnvidia-ml.so.1" in outcome.reason and "nvidia-smi is not on PATH" in outcome.reason
    assert outcome.duration_s < 1.0  # about 0.05 s: the floor of every audit on machines without NVIDIA


def test_a_hanging_driver_costs_the_probe_its_deadline_only(fake_nvml_dir, tmp_path):
    env = without_nvidia_smi(nvml_env(h100_node("delay nvmlInit=30000\n"), tmp_path), tmp_path)
    outcome = run_probe(env, deadline_s=1.5)

    assert outcome.status == "timeout"
    assert outcome.duration_s < 1.5 + 2.0


def test_a_malformed_description_fails_loudly(fake_nvml_dir, tmp_path):
    outcome = run_probe(nvml_env("gpu nmae=typo\n", tmp_path))

    assert outcome.status == "crashed"
    assert "fake_nvml:" in outcome.reason and "unknown key: nmae" in outcome.reason


# --- through the CLI ------------------------------------------------------------------


def test_cli_quick_audit_of_the_h100_node(fake_nvml_dir, tmp_path):
    env = without_nvidia_smi(nvml_env(h100_node(), tmp_path), tmp_path)
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--format", "json", "--quick"],
                            capture_output=True, text=True, env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    run = next(run for run in report["probes"] if run["name"] == PROBE.name)
    assert run["status"] == "ok", run
    facts = from_dict(NvidiaFacts, report["accelerators"]["nvidia"])
    assert [gpu.uuid for gpu in facts.gpus] == [h100_uuid(i) for i in range(8)]
    assert facts.gpus[0].mig_instances[2].uuid == H100_MIG[2][1]
    assert facts.cuda_driver_version == "12.8"


# --- the nvidia-smi parser, directly ------------------------------------------------

# The columns a driver answers that refused the PCIe and clock-event fields.
BASIC = nvidia_smi.QUERY_FIELDS[:12]


def test_parse_query_output_reads_values_and_not_available_markers():
    text = ("0, GPU-a, Tesla T4, 15360, 14900, 7.5, 00000000:00:1E.0, 535.183.01, [N/A], [N/A], Default, 70.00\n"
            "1, GPU-b, Tesla T4, [Unknown Error], 14900, 7.5, 00000000:00:1F.0, 535.183.01, N/A, "
            "[Not Supported], Prohibited, [GPU is lost]\n")
    first, second = nvidia_smi.parse_query_output(text, fields=BASIC)

    assert first["memory_total_bytes"] == 15360 * MIB and first["compute_capability"] == "7.5"
    assert (first["mig_mode_current"], first["mig_mode_pending"], first["power_limit_watts"]) == (None, None, 70.0)
    assert first["errors"] == [] and first["pcie_link_width_max"] is None and first["clock_event_reasons"] is None
    assert (second["memory_total_bytes"], second["power_limit_watts"], second["compute_mode"]) == (
        None, None, "Prohibited")
    assert second["errors"] == ["nvidia-smi memory.total: Unknown Error", "nvidia-smi power.limit: GPU is lost"]


@pytest.mark.parametrize("line, why", [
    ("0, GPU-a, Tesla T4, 15360", "4 fields, expected 12"),
    ("0, GPU-a, Tesla T4, lots, 14900, 7.5, 0:0:1E.0, 535.183.01, Disabled, Disabled, Default, 70.00", "'lots' is not"),
    ("x, GPU-a, Tesla T4, 15360, 14900, 7.5, 0:0:1E.0, 535.183.01, Disabled, Disabled, Default, 70.00", "index 'x'"),
    ("0, GPU-a, Tesla T4, 15360, 14900, seven, 0:0:1E.0, 535.183.01, Disabled, Disabled, Default, 70.00", "not M.m"),
    ("0, GPU-a, Tesla T4, 15360, 14900, 7.5, 0:0:1E.0, 535.183.01, Maybe, Disabled, Default, 70.00", "neither Enabled"),
    ("0, GPU-a, Tesla T4, 15360, 14900, 7.5, 0:0:1E.0, 535.183.01, Disabled, Disabled, Default, lots", "not a number"),
])
def test_parse_query_output_rejects_garbage_quoting_the_line(line, why):
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as raised:
        nvidia_smi.parse_query_output(line + "\n", fields=BASIC)
    assert why in str(raised.value)
    assert str(raised.value).startswith("nvidia-smi output could not be parsed")
    assert repr(line[:20])[:-1] in str(raised.value)


def test_parse_quotes_a_long_bad_line_shortened():
    with pytest.raises(nvidia_smi.NvidiaSmiParseError) as raised:
        nvidia_smi.parse_query_output("x" * 5000)
    assert len(str(raised.value)) < 160 and "..." in str(raised.value)


def test_parse_no_devices_and_cuda_header():
    assert nvidia_smi.parse_query_output("No devices were found\n") == []
    header = "| NVIDIA-SMI 580.65.06      Driver Version: 580.65.06      CUDA Version: 13.0     |"
    assert nvidia_smi.parse_cuda_version(header) == "13.0"
    assert nvidia_smi.parse_cuda_version("no header here") is None


def test_fallback_timeout_environment_variable(monkeypatch):
    from auditor.probes.nvml_child import _smi_timeout

    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert _smi_timeout() == 2.5
    for bad in ("", "soon", "-1", "0", "inf", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        assert _smi_timeout() == nvidia_smi.DEFAULT_TIMEOUT_S
    monkeypatch.delenv(TIMEOUT_ENV)
    assert _smi_timeout() == nvidia_smi.DEFAULT_TIMEOUT_S
