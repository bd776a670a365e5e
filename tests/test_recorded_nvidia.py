"""The nvidia-smi fallback on outputs recorded on real machines (tests/recorded/nvidia-smi/).

A fake nvidia-smi (tests/fakes/nvidia-smi/replay.py) answers the probe's three calls from a
capture: the default table, ``-L`` and ``--query-gpu`` projected out of the recorded CSV. Every
field the probe reports is compared with the value read here, independently, from the capture's
own sections: the CSV through the csv module by its header names, the CUDA version from the
``nvidia-smi --version`` section (not the table the probe reads), the MIG devices from ``-L``.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest

from auditor.checks import run_checks
from auditor.facts import NvidiaFacts, NvidiaGpu, from_dict
from auditor.probes import nvidia_smi
from auditor.probes.fsroot import FsRoot
from conftest import quick_snapshot, run_auditor
from machines import linux_machine
import nvml_fake
from nvml_fake import GOOD_CAPTURE, gpu_line, nvml_env, replaying_smi, with_nvidia_smi
from simulated_machines import SimulatedMachine, nvidia_kernel

RECORDED = Path(__file__).parent / "recorded" / "nvidia-smi"
CAPTURES = sorted(RECORDED.glob("*.txt"))
MIB = 1024 * 1024
fake_nvml_dir = nvml_fake.fake_nvml_dir  # the session fixture that builds the fake libnvidia-ml.so.1
# nvml.h's nvmlClocksEventReason* bits, as nvidia-smi's per-reason columns name them.
REASON_BITS = {"gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4, "hw_slowdown": 0x8,
               "sync_boost": 0x10, "sw_thermal_slowdown": 0x20, "hw_thermal_slowdown": 0x40,
               "hw_power_brake_slowdown": 0x80, "display_clock_setting": 0x100}
# Finding families about the machine itself; FW and ENV judge this machine's Python packages.
MACHINE_FAMILIES = ("GPU", "DRV", "ARC", "CPU", "MEM", "AUD", "ROC", "PLT", "CUDA")
LINK = ("pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current", "pcie.link.width.max")
COMPUTE_MODES = {"Default": 0, "Exclusive_Thread": 1, "Prohibited": 2, "Exclusive_Process": 3}  # nvmlComputeMode_t


def section(text: str, name: str) -> str:
    """The output under the banner "# <name>", up to the next banner."""
    lines = text.split("\n")
    start = lines.index(f"# {name}")
    body = []
    for line in lines[start + 1:]:
        if line.startswith("# $") or (line.startswith("#" * 80) and not body):
            continue
        if line.startswith("#" * 80):
            break
        body.append(line)
    return "\n".join(body).strip("\n")


def recorded_rows(text: str) -> list[dict[str, str]]:
    """The idle query-gpu CSV: one dict per GPU, keyed by field name without its unit."""
    reader = csv.reader(section(text, "idle :: query-gpu (csv, what the exporter parses)").splitlines(),
                        skipinitialspace=True)
    header = [re.sub(r" \[[^\]]+\]$", "", name.strip()) for name in next(reader)]
    return [dict(zip(header, (cell.strip() for cell in row))) for row in reader if row]


def recorded_cuda(text: str) -> str:
    """The CUDA version nvidia-smi --version prints (CUDA UMD version from driver 610)."""
    for line in section(text, "capabilities :: version").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("cuda version", "cuda umd version") and not value.strip().startswith("Deprecated"):
            return value.strip()
    raise AssertionError("no CUDA version in the capture")


def recorded_migs(text: str) -> dict[int, list[tuple[int, str, str]]]:
    migs: dict[int, list[tuple[int, str, str]]] = {}
    gpu = None
    for line in section(text, "capabilities :: list (-L)").splitlines():
        words = line.split()
        if words and words[0] == "GPU":
            gpu = int(words[1].rstrip(":"))
            migs[gpu] = []
        elif words and words[0] == "MIG":
            migs[gpu].append((int(words[words.index("Device") + 1].rstrip(":")), line.split("UUID: ")[1].rstrip(")"),
                              words[1]))
    return migs


def recorded_mig_memory(text: str) -> dict[tuple[int, int], int]:
    """(GPU, MIG device) -> MiB, from the table's MIG devices box: its rows whose first cell holds
    four numbers (GPU, GI, CI, MIG device), the second "used / total"."""
    memory = {}
    for line in section(text, "idle :: nvidia-smi (default table)").splitlines():
        cells = line.split("|")
        if len(cells) > 2 and len(ids := cells[1].split()) == 4 and all(part.isdigit() for part in ids):
            memory[(int(ids[0]), int(ids[3]))] = int(cells[2].split("/")[1].strip().removesuffix("MiB"))
    return memory


def value(row: dict[str, str], field: str):
    text = row[field]
    return None if text.startswith("[") or text in ("N/A", "") else text


def number(row: dict[str, str], field: str, unit: str = ""):
    text = value(row, field)
    return None if text is None else float(text.removesuffix(unit).strip())


def replay(capture: Path, tmp_path: Path) -> NvidiaFacts:
    smi = replaying_smi(capture, tmp_path / "bin")
    return from_dict(NvidiaFacts, nvidia_smi.collect(timeout_s=20, executable=str(smi)))


def test_the_suite_covers_recorded_captures_of_several_drivers():
    drivers = {capture.stem.split("__")[-1].split(".")[0] for capture in CAPTURES}
    assert len(CAPTURES) >= 4 and {"590", "610"} <= drivers, [c.name for c in CAPTURES]
    readme = (RECORDED.parent / "README.md").read_text()
    assert all(f"`nvidia-smi/{capture.name}`" in readme for capture in CAPTURES)


def assert_matches(facts: NvidiaFacts, text: str) -> None:
    """Every field the probe reported, against the capture."""
    rows = recorded_rows(text)
    assert facts.driver_version == rows[0]["driver_version"]
    assert facts.cuda_driver_version == recorded_cuda(text)
    assert len(facts.gpus) == len(rows) and facts.gpus_left_out == 0
    migs, mig_memory = recorded_migs(text), recorded_mig_memory(text)
    for gpu, row in zip(facts.gpus, rows):
        total, free = number(row, "memory.total", "MiB"), number(row, "memory.free", "MiB")
        assert gpu.index == int(row["index"])
        assert (gpu.uuid, gpu.name, gpu.pci_bus_id) == (row["uuid"], row["name"], row["pci.bus_id"])
        assert gpu.memory_total_bytes == (None if total is None else int(total) * MIB)
        assert gpu.memory_free_bytes == (None if free is None else int(free) * MIB)
        assert gpu.compute_capability == value(row, "compute_cap")
        assert gpu.mig_mode_current == ({"Enabled": True, "Disabled": False}.get(row["mig.mode.current"]))
        assert gpu.mig_mode_pending == ({"Enabled": True, "Disabled": False}.get(row["mig.mode.pending"]))
        assert gpu.compute_mode == value(row, "compute_mode")
        assert gpu.power_limit_watts == number(row, "power.limit", "W")
        assert gpu.default_power_limit_watts == number(row, "power.default_limit", "W")
        assert (gpu.pcie_link_gen_current, gpu.pcie_link_gen_max, gpu.pcie_link_width_current,
                gpu.pcie_link_width_max) == tuple(int(row[field]) if value(row, field) else None for field in LINK)
        # The capture's per-reason columns say which bits of the mask are active.
        active = {name for name in REASON_BITS if row.get(f"clocks_event_reasons.{name}") == "Active"}
        assert set(gpu.clock_event_reasons) == active
        assert sum(REASON_BITS[name] for name in gpu.clock_event_reasons) == int(row["clocks_event_reasons.active"], 16)
        if gpu.mig_mode_current:
            assert [(m.index, m.uuid, m.profile) for m in gpu.mig_instances] == migs[gpu.index]
            assert [m.memory_total_bytes for m in gpu.mig_instances] == [
                mig_memory[(gpu.index, m.index)] * MIB for m in gpu.mig_instances]
        else:
            assert gpu.mig_instances == []
        assert gpu.brand is None and gpu.architecture is None  # the CSV has neither
        assert gpu.errors == []


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.stem)
def test_the_nvidia_smi_fallback_reports_what_the_capture_says(capture, tmp_path):
    facts = replay(capture, tmp_path)

    assert facts.source == "nvidia-smi"
    assert_matches(facts, capture.read_text())


def nvml_description(text: str) -> str:
    """The fake NVML's description of the captured machine, every value taken from the capture."""
    rows, migs = recorded_rows(text), recorded_migs(text)
    major, minor = recorded_cuda(text).split(".")
    lines = [f"driver {rows[0]['driver_version']}", f"cuda {int(major) * 1000 + int(minor) * 10}"]
    for row in rows:
        keys = {"name": row["name"], "uuid": row["uuid"], "cc": value(row, "compute_cap"),
                "mem_total": int(number(row, "memory.total", "MiB")) * MIB,
                "mem_free": int(number(row, "memory.free", "MiB")) * MIB,
                "bus": row["pci.bus_id"], "pci_id": row["pci.device_id"],
                "mig_current": {"Enabled": 1, "Disabled": 0}.get(row["mig.mode.current"]),
                "mig_pending": {"Enabled": 1, "Disabled": 0}.get(row["mig.mode.pending"]),
                "compute_mode": COMPUTE_MODES[row["compute_mode"]],
                "power_mw": int(number(row, "power.limit", "W") * 1000),
                "power_default_mw": int(number(row, "power.default_limit", "W") * 1000),
                "clocks_reasons": row["clocks_event_reasons.active"],
                **{key: int(row[field]) for key, field in zip(
                    ("pcie_gen", "pcie_gen_max", "pcie_width", "pcie_width_max"), LINK) if value(row, field)}}
        lines.append(gpu_line(**{key: v for key, v in keys.items() if v is not None}))
        for slot, uuid, profile in migs.get(int(row["index"]), []) if keys["mig_current"] else []:
            memory = recorded_mig_memory(text)[(int(row["index"]), slot)] * MIB
            lines.append(f'mig gpu={row["index"]} index={slot} uuid={uuid} name="{row["name"]} MIG {profile}" '
                         f"mem_total={memory}")
    return "\n".join(lines) + "\n"


def captured_machine(capture: Path) -> SimulatedMachine:
    """The captured machine as a fake root: its driver's kernel files and its GPUs on PCI."""
    rows = recorded_rows(capture.read_text())
    return SimulatedMachine(
        capture.stem, {**linux_machine(), **nvidia_kernel(rows[0]["driver_version"], len(rows))},
        pci=[(row["pci.bus_id"][4:].lower(), "0x10de", "0x" + row["pci.device_id"][2:6].lower(), "0x030200", "nvidia")
             for row in rows])


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.stem)
def test_through_nvml_the_captured_machine_is_healthy(capture, tmp_path, fake_nvml_dir, monkeypatch):
    """The captured machine with its NVML answering what the capture recorded, and its kernel
    files and PCI functions in a fake root: the same facts, and no finding about the machine."""
    text = capture.read_text()
    for key, env_value in nvml_env(nvml_description(text), tmp_path).items():
        monkeypatch.setenv(key, env_value)
    snapshot = quick_snapshot(FsRoot(captured_machine(capture).build(tmp_path / "root")))

    assert snapshot.probe("nvidia").status == "ok", snapshot.probe("nvidia").reason
    assert snapshot.accelerators.nvidia.source == "nvml"
    assert_matches(snapshot.accelerators.nvidia, text)
    about_the_machine = [f"{f.code}: {f.title}" for f in run_checks(snapshot) if f.code.startswith(MACHINE_FAMILIES)]
    assert about_the_machine == []


def test_the_610_mig_machine_through_the_cli(tmp_path):
    """The whole audit, as a user runs it where NVML cannot load: the 610 driver's "CUDA UMD
    Version" header and its MIG device, and no GPU007 "MIG on, no instance"."""
    capture = RECORDED / "linux-x86_64__nvidia-h200-mig__610.43.02.txt"
    root = captured_machine(capture).build(tmp_path / "root")
    env = with_nvidia_smi({k: v for k, v in os.environ.items() if not k.startswith("FAKE_NVML")}, str(capture), tmp_path)
    snapshot = tmp_path / "snapshot.json"
    result = run_auditor("audit", "--root", str(root), "--quick", "--format", "json", "--save-snapshot", str(snapshot),
                         env=env)

    report = json.loads(result.stdout)
    nvidia = report["accelerators"]["nvidia"]
    assert (nvidia["source"], nvidia["cuda_driver_version"], nvidia["driver_version"]) == ("nvidia-smi", "13.3", "610.43.02")
    (gpu,) = nvidia["gpus"]
    assert [(m["index"], m["profile"]) for m in gpu["mig_instances"]] == [(0, "3g.71gb")]
    assert not [f for f in report["findings"] if f["code"] in ("GPU007", "DRV001", "GPU010")]
    text = run_auditor("audit", "--snapshot", str(snapshot), "--format", "markdown").stdout
    assert "NVIDIA H200, cc 9.0, 140.4 GiB, bus 00000000:83:00.0, PCIe gen5 x16, MIG on, 1 instance(s) (3g.71gb)" in text


# --- what the fallback does where a driver knows fewer fields ---------------------------


def without_column(capture: Path, field: str, directory: Path) -> Path:
    """A copy of a capture whose CSV lacks one column, as from a driver that predates the field."""
    lines = capture.read_text().split("\n")
    header_at = next(i for i, line in enumerate(lines) if line.startswith("index, uuid"))
    header = [cell.strip() for cell in lines[header_at].split(",")]
    drop = next(i for i, name in enumerate(header) if name.split(" [")[0] == field)
    for i in range(header_at, len(lines)):
        if lines[i].strip():
            cells = lines[i].split(", ")
            lines[i] = ", ".join(cells[:drop] + cells[drop + 1:])
    copy = directory / f"without-{field}.txt"
    copy.write_text("\n".join(lines))
    return copy


def test_a_field_the_driver_refuses_is_unknown_and_the_rest_is_read(tmp_path):
    facts = replay(without_column(GOOD_CAPTURE, "compute_cap", tmp_path), tmp_path)  # as drivers before 510

    assert [gpu.compute_capability for gpu in facts.gpus] == [None, None]
    assert facts.sources["gpus.compute_capability"] == "unknown: this nvidia-smi refuses the field compute_cap"
    assert [gpu.memory_total_bytes for gpu in facts.gpus] == [81920 * MIB] * 2
    assert facts.gpus[1].clock_event_reasons == ["gpu_idle"] and facts.driver_version == "550.54.15"


def test_a_driver_without_the_default_power_limit_field_leaves_it_unknown(tmp_path):
    facts = replay(without_column(GOOD_CAPTURE, "power.default_limit", tmp_path), tmp_path)

    assert [gpu.default_power_limit_watts for gpu in facts.gpus] == [None, None]
    assert facts.sources["gpus.default_power_limit_watts"] == "unknown: this nvidia-smi refuses the field power.default_limit"
    assert [gpu.power_limit_watts for gpu in facts.gpus] == [400.0, None]


def test_a_refused_driver_version_is_asked_by_its_newer_name(tmp_path):
    capture = without_column(GOOD_CAPTURE, "driver_version", tmp_path)
    capture.write_text(capture.read_text().replace("index, uuid,", "kmd_version, index, uuid,").replace(
        "\n0, GPU-", "\n550.54.15, 0, GPU-").replace("\n1, GPU-", "\n550.54.15, 1, GPU-"))
    facts = replay(capture, tmp_path)

    assert facts.driver_version == "550.54.15"
    assert facts.sources["driver_version"] == "nvidia-smi --query-gpu=kmd_version (this nvidia-smi refuses driver_version)"


def test_without_the_list_mig_instances_are_unknown_not_none(tmp_path):
    smi = tmp_path / "bin" / "nvidia-smi"
    replaying_smi(GOOD_CAPTURE, tmp_path / "real")
    smi.parent.mkdir()
    smi.write_text(f'#!/bin/sh\n[ "$1" = "-L" ] && exit 6\nexec "{tmp_path / "real" / "nvidia-smi"}" "$@"\n')
    smi.chmod(0o755)
    facts = from_dict(NvidiaFacts, nvidia_smi.collect(timeout_s=20, executable=str(smi)))

    assert facts.gpus[0].mig_mode_current and facts.gpus[0].mig_instances is None
    assert facts.gpus[1].mig_instances == []  # MIG off: none, whatever the list
    assert facts.sources["gpus.mig_instances"] == "unknown: nvidia-smi -L did not answer"



def test_gpu007_waits_for_a_list_and_fires_on_an_empty_one(tmp_path, fake_root):
    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.accelerators.nvidia = NvidiaFacts(source="nvidia-smi", gpus=[NvidiaGpu(0, "NVIDIA H200", mig_mode_current=True,
                                                                                 mig_instances=None)])
    assert "GPU007" not in [f.code for f in run_checks(snapshot)]
    snapshot.accelerators.nvidia.gpus[0].mig_instances = []
    assert "GPU007" in [f.code for f in run_checks(snapshot)]


def test_gpu010_names_a_thermal_slowdown_and_ignores_an_idle_gpu(tmp_path, fake_root):
    snapshot = quick_snapshot(fake_root(linux_machine()))
    gpus = [NvidiaGpu(0, "NVIDIA L40S", clock_event_reasons=["gpu_idle", "sw_power_cap"]),
            NvidiaGpu(1, "NVIDIA L40S", clock_event_reasons=["hw_slowdown", "hw_thermal_slowdown"])]
    snapshot.accelerators.nvidia = NvidiaFacts(source="nvml", gpus=gpus)
    (found,) = [f for f in run_checks(snapshot) if f.code == "GPU010"]
    assert found.title == "GPU 1 (NVIDIA L40S) is slowed down: hardware slowdown, hardware thermal slowdown"
    assert "nvidia-smi -q -i 1 -d TEMPERATURE,POWER,PERFORMANCE" in found.fix
