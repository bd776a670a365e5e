"""The CPU and host probes on real /proc/cpuinfo captures (tests/recorded/README.md).

Every expected value is read here from the raw capture, apart from the probe's parser (processor
lines counted, implementer and part codes looked up in the knowledge JSON directly), and also
checked against the machine's known identity, written out by hand in CAPTURES.

Two cases have no recorded capture in the search index the captures come from, and are built here
on synthetic trees, named as such: an x86 CPU without AVX (tests/machines.py), and a POWER9
/proc/cpuinfo in the shape the kernel prints it (arch/powerpc/kernel/setup-common.c, show_cpuinfo).
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import auditor.knowledge
from auditor.checks import run_checks
from auditor.probes import cpu as cpu_probe
from auditor.probes.base import ProbeContext
from auditor.probes.cpu import ARM32_FEATURES, ARM_FEATURES, RISCV_FEATURES, X86_FEATURES, collect_cpu, \
    machine_architecture
from auditor.probes.fsroot import FsRoot
from auditor.probes.host import collect_host
from conftest import quick_snapshot, run_auditor
from machines import X86_FLAGS_NO_AVX, linux_machine, x86_cpuinfo

RECORDED = Path(__file__).parent / "recorded" / "cpuinfo"
ARM_CORES = json.loads((Path(auditor.knowledge.__file__).parent / "arm-cores.json").read_text())


@dataclass(frozen=True)
class Capture:
    architecture: Optional[str]  # what uname -m says on that machine; None where the capture cannot tell
    vendor: Optional[str]
    model: Optional[str]
    features: dict[str, bool]  # a few the capture's flags settle, by hand
    clock_mhz: Optional[float] = None  # the clock the capture announces, by hand; None where it gives none


CAPTURES = {
    "graviton2-neoverse-n1.txt": Capture("aarch64", "ARM", "Neoverse-N1",
                                         {"neon": True, "fp16": True, "dotprod": True, "sve": False}),
    # archspec's authors replaced every field but Features, implementer and part with "Irrelevant":
    # "CPU architecture: Irrelevant" leaves the kernel's architecture untold.
    "neoverse-n2-anonymised.txt": Capture(None, "ARM", "Neoverse-N2",
                                          {"sve": True, "sve2": True, "bf16": True, "i8mm": True, "sme": False}),
    "neoverse-v3ae.txt": Capture("aarch64", "ARM", "Neoverse-V3AE",
                                 {"sve": True, "sve2": True, "bf16": True, "i8mm": True, "sme": False}),
    "ampereone-ampere1a.txt": Capture("aarch64", "Ampere", "Ampere-1a", {"bf16": True, "i8mm": True, "sve": False}),
    "scaleway-thunderx.txt": Capture("aarch64", "Cavium", "ThunderX-88XX",
                                     {"neon": True, "fp16": False, "dotprod": False}),
    # Snapdragon 821: processors 0-1 are part 0x201, 2-3 part 0x205; lscpu names both Qualcomm parts "Kryo".
    "oneplus-3t.txt": Capture("aarch64", "Qualcomm", "Kryo", {"neon": True, "fp16": False, "dotprod": False}),
    # Exynos 5422 on a 32-bit kernel: processors 0-3 are Cortex-A7s, 4-7 Cortex-A15s.
    "galaxy-s5-global-32bit.txt": Capture("armv7l", "ARM", "Cortex-A7 + Cortex-A15", {"neon": True, "fp16": False}),
    "spacemit-x60.txt": Capture("riscv64", None, "spacemit,x60", {"rvv": True}),
    # The same core under Debian 13's kernel, which prints no uarch line: the model name stands in.
    "spacemit-x60-debian13.txt": Capture("riscv64", None, "Spacemit(R) X60", {"rvv": True}),
    "xeon-6972p-graniterapids.txt": Capture("x86_64", "GenuineIntel", "Intel(R) Xeon(R) 6972P",
                                            {"avx": True, "avx512f": True, "avx512_vnni": True, "avx512_fp16": True,
                                             "amx_tile": True, "amx_int8": True}, clock_mhz=2400.0),
    # An arm64 kernel older than 3.19: both processors listed first, their one set of fields after.
    "nexus9-denver.txt": Capture("aarch64", "NVIDIA", "Denver", {"neon": True, "fp16": False, "dotprod": False}),
}

# Synthetic, not recorded: a POWER9 /proc/cpuinfo in the shape of the kernel's show_cpuinfo
# (arch/powerpc/kernel/setup-common.c), for want of a recorded one in the index.
SYNTHETIC_POWER9 = ("processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: 2300.000000MHz\n"
                    "revision\t: 2.2 (pvr 004e 1202)\n\ntimebase\t: 512000000\nplatform\t: PowerNV\n"
                    "model\t\t: 8335-GTH\nmachine\t\t: PowerNV 8335-GTH\n")


def raw(text: str, key: str) -> list[str]:
    """Every value of a key, in file order, as the capture spells it ("CPU part\t: 0xd0c" -> "0xd0c")."""
    return [match.group(1).strip() for match in re.finditer(rf"^{re.escape(key)}[ \t]*:(.*)$", text, re.MULTILINE)]


def in_order(names: list[str]) -> str:
    return " + ".join(dict.fromkeys(names))


def expected_from_capture(text: str) -> tuple[Optional[str], Optional[str], dict[str, bool]]:
    """(vendor, model, features) as the raw capture gives them."""
    if raw(text, "CPU implementer"):
        implementers, parts = raw(text, "CPU implementer"), raw(text, "CPU part")
        vendors = {row["implementer"]: row["name"] for row in ARM_CORES["implementers"]}
        cores = {(row["implementer"], row["part"]): row["name"] for row in ARM_CORES["cores"]}
        words = set.intersection(*(set(line.split()) for line in raw(text, "Features")))
        table = ARM32_FEATURES if "half" in words else ARM_FEATURES
        return (in_order([vendors[code] for code in implementers]),
                in_order([cores[pair] for pair in zip(implementers, parts)]),
                {name: word in words for name, word in table.items()})
    if raw(text, "isa"):
        letters = raw(text, "isa")[0][4:].split("_")[0]
        model = (raw(text, "uarch") or raw(text, "model name"))[0]
        return None, model, {name: letter in letters for name, letter in RISCV_FEATURES.items()}
    if raw(text, "vendor_id"):
        words = set(raw(text, "flags")[0].split())
        return raw(text, "vendor_id")[0], raw(text, "model name")[0], {n: w in words for n, w in X86_FEATURES.items()}
    cpu = raw(text, "cpu")[0]  # POWER: "POWER8NVL (raw), altivec supported"
    return "IBM", cpu.split(",")[0].split(" (")[0], {"altivec": True} if "altivec supported" in cpu else {}


def expected_clock(text: str) -> Optional[float]:
    """The clock a raw capture announces, in MHz: the rated one in its model name, else its fastest "cpu MHz"."""
    rated = re.search(r"@\s*([0-9.]+)\s*GHz", (raw(text, "model name") or [""])[0])
    if rated:
        return float(rated.group(1)) * 1000
    speeds = [float(value) for value in raw(text, "cpu MHz")]
    return max(speeds) if speeds else None


def write_tree(directory: Path, capture: Optional[str], extra: Optional[dict[str, str]] = None,
               text: Optional[str] = None) -> FsRoot:
    """A plain Linux tree around a capture (or, for the synthetic cases, a given text), with one
    allowed CPU per processor it lists."""
    text = (RECORDED / capture).read_text() if text is None else text
    files = {**linux_machine(processors=len(raw(text, "processor"))), "/proc/cpuinfo": text, **(extra or {})}
    for absolute, content in files.items():
        path = directory / absolute.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return FsRoot(directory)


def test_every_capture_is_described_here_and_in_the_readme():
    readme = (RECORDED.parent / "README.md").read_text()
    section = readme.split("## CPUs (/proc/cpuinfo)")[1].split("\n## ")[0]
    assert sorted(p.name for p in RECORDED.iterdir()) == sorted(CAPTURES)
    for name in CAPTURES:
        assert re.search(rf"^\| `cpuinfo/{re.escape(name)}` \|.*\| [0-9a-f]{{40}} \| \S", section, re.MULTILINE), name


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_cpu_and_host_probes_report_what_the_capture_says(tmp_path, name):
    text, known = (RECORDED / name).read_text(), CAPTURES[name]
    ctx = ProbeContext(write_tree(tmp_path, name), {})
    cpu, host = collect_cpu(ctx), collect_host(ctx)
    vendor, model, features = expected_from_capture(text)

    assert cpu.logical_cpus == len(raw(text, "processor"))
    assert cpu.vendor == vendor == known.vendor
    assert cpu.model == model == known.model
    assert cpu.features == features
    assert known.features.items() <= cpu.features.items()
    assert cpu.clock_mhz == expected_clock(text) == known.clock_mhz
    if known.clock_mhz is None:
        assert cpu.sources["clock_mhz"].startswith("unknown: ")
    # The tree's machine, not this one's: one answer, from one place, for both probes.
    assert cpu.architecture == host.architecture == known.architecture
    assert cpu.sources["architecture"] == host.sources["architecture"]
    assert "platform.machine()" not in cpu.sources["architecture"]
    if known.architecture is None:
        assert cpu.sources["architecture"].startswith("unknown: ")


def test_cpufreq_maximum_comes_before_the_model_name_and_the_model_name_before_cpu_mhz(tmp_path):
    """On the Xeon capture (cpu MHz 2400, no clock in its model name): a rated clock written into the model
    name wins over cpu MHz, and cpufreq's maximum over both."""
    text = (RECORDED / "xeon-6972p-graniterapids.txt").read_text()
    rated = re.sub(r"^(model name\s*:.*)$", r"\1 @ 2.10GHz", text, count=1, flags=re.MULTILINE)
    cpufreq = {"/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3900000\n"}
    cases = {"cpu-mhz": ({}, 2400.0, "/proc/cpuinfo cpu MHz"),
             "rated": ({"/proc/cpuinfo": rated}, 2100.0, "/proc/cpuinfo model name"),
             "cpufreq": ({**cpufreq, "/proc/cpuinfo": rated}, 3900.0, "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")}
    assert expected_clock(rated) == 2100.0
    for name, (extra, clock, source) in cases.items():
        (tmp_path / name).mkdir()
        cpu = collect_cpu(ProbeContext(write_tree(tmp_path / name, "xeon-6972p-graniterapids.txt", extra), {}))
        assert (cpu.clock_mhz, cpu.sources["clock_mhz"].split(" (")[0]) == (clock, source), name


def test_this_machines_clock_is_what_its_own_files_say():
    """The live machine: cpufreq's maximum where the kernel has it, else what /proc/cpuinfo says,
    read here apart from the probe (this VM shows only "cpu MHz : 2100.000")."""
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if platform.system() != "Linux":
        pytest.skip("reads /proc/cpuinfo")
    expected = int(cpufreq.read_text()) / 1000 if cpufreq.exists() else expected_clock(Path("/proc/cpuinfo").read_text())
    assert collect_cpu(ProbeContext(FsRoot(), {})).clock_mhz == expected


def test_other_platforms_take_the_higher_of_py_cpuinfos_clocks(monkeypatch):
    monkeypatch.setattr(cpu_probe, "_cpuinfo", lambda: {"brand_raw": "Apple M2", "flags": [],
                                                         "hz_advertised": [0, 0], "hz_actual": [3504000000, 0]})
    cpu = cpu_probe._collect_other()
    assert (cpu.clock_mhz, cpu.sources["clock_mhz"]) == (3504.0, "py-cpuinfo hz_actual")
    monkeypatch.setattr(cpu_probe, "_cpuinfo", lambda: {"brand_raw": "Some CPU", "flags": []})
    cpu = cpu_probe._collect_other()
    assert cpu.clock_mhz is None and cpu.sources["clock_mhz"].startswith("unknown: ")


def test_synthetic_power_cpuinfo_names_the_cpu_but_not_the_kernels_byte_order(tmp_path):
    ctx = ProbeContext(write_tree(tmp_path, None, text=SYNTHETIC_POWER9), {})
    cpu, host = collect_cpu(ctx), collect_host(ctx)
    assert (cpu.vendor, cpu.model, cpu.features) == expected_from_capture(SYNTHETIC_POWER9) \
        == ("IBM", "POWER9", {"altivec": True})
    assert cpu.logical_cpus == 1
    assert cpu.architecture is host.architecture is None
    assert cpu.sources["architecture"] == host.sources["architecture"]
    assert cpu.sources["architecture"].startswith("unknown: ")


def test_power_architecture_comes_from_the_trees_kernel_when_it_says(tmp_path):
    """On the synthetic POWER9 tree: /proc/sys/kernel/arch settles what its /proc/cpuinfo cannot."""
    root = write_tree(tmp_path, None, {"/proc/sys/kernel/arch": "ppc64le\n"}, text=SYNTHETIC_POWER9)
    ctx = ProbeContext(root, {})
    cpu, host = collect_cpu(ctx), collect_host(ctx)
    assert cpu.architecture == host.architecture == "ppc64le"
    assert cpu.sources["architecture"] == host.sources["architecture"] == "/proc/sys/kernel/arch"


def test_an_unknown_arm_implementer_or_part_is_reported_as_unknown_with_its_codes(tmp_path):
    text = (RECORDED / "graviton2-neoverse-n1.txt").read_text()
    (tmp_path / "part").mkdir()
    part = write_tree(tmp_path / "part", "graviton2-neoverse-n1.txt", {"/proc/cpuinfo": text.replace("0xd0c", "0xfff")})
    cpu = collect_cpu(ProbeContext(part, {}))
    assert (cpu.vendor, cpu.model) == ("ARM", None)
    assert "implementer 0x41 part 0xfff" in cpu.sources["model"] and cpu.sources["model"].startswith("unknown: ")

    (tmp_path / "implementer").mkdir()
    implementer = write_tree(tmp_path / "implementer", "graviton2-neoverse-n1.txt",
                             {"/proc/cpuinfo": text.replace("0x41", "0x99")})
    cpu = collect_cpu(ProbeContext(implementer, {}))
    assert (cpu.vendor, cpu.model) == (None, None)
    assert "implementer 0x99 part 0xd0c" in cpu.sources["vendor"]
    assert cpu.architecture == "aarch64"


def test_a_capture_without_flags_or_model_name_says_unknown_and_gets_no_avx_finding(tmp_path):
    text = (RECORDED / "xeon-6972p-graniterapids.txt").read_text()
    bare = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(("flags", "model name")))
    assert "vmx flags" in bare  # a line of its own, which is no x86 flags line
    root = write_tree(tmp_path, "xeon-6972p-graniterapids.txt", {"/proc/cpuinfo": bare})
    cpu = collect_cpu(ProbeContext(root, {}))
    assert (cpu.model, cpu.features) == (None, {})
    assert cpu.sources["features"].startswith("unknown: ") and cpu.sources["model"].startswith("unknown: ")
    assert "CPU001" not in [f.code for f in run_checks(quick_snapshot(root))]


def test_synthetic_x86_cpu_without_avx_still_gets_cpu001(tmp_path):
    """Synthetic: no recorded x86 capture without AVX is in the index."""
    model = "Synthetic x86 CPU without AVX"
    snapshot = quick_snapshot(write_tree(tmp_path, None, text=x86_cpuinfo(4, flags=X86_FLAGS_NO_AVX, model=model)))
    assert snapshot.machine.cpu.architecture == "x86_64"
    assert snapshot.machine.cpu.features["avx"] is False
    finding = next(f for f in run_checks(snapshot) if f.code == "CPU001")
    assert model in finding.title


@pytest.mark.parametrize("name", ["xeon-6972p-graniterapids.txt"])
def test_recorded_x86_captures_with_avx_get_no_cpu001(tmp_path, name):
    snapshot = quick_snapshot(write_tree(tmp_path, name))
    assert snapshot.machine.cpu.features["avx"] is True
    assert "CPU001" not in [f.code for f in run_checks(snapshot)]


def test_the_live_root_keeps_the_kernels_own_answer(tmp_path):
    (tmp_path / "link").symlink_to("/")
    assert machine_architecture(FsRoot()) == (platform.machine(), "platform.machine() (uname)")
    assert FsRoot(tmp_path / "link").is_live and not FsRoot(tmp_path).is_live


@pytest.mark.parametrize("name", ["neoverse-v3ae.txt", "spacemit-x60.txt", "galaxy-s5-global-32bit.txt"])
def test_audit_of_a_non_x86_tree_gives_no_avx_finding(tmp_path, name):
    """Through the CLI: these CPUs have no AVX, which TensorFlow's x86 wheels need and theirs do not."""
    write_tree(tmp_path, name)
    result = run_auditor("audit", "--quick", "--format", "json", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "CPU001" not in [f["code"] for f in report["findings"]]
    machine = report["machine"]
    assert machine["cpu"]["architecture"] == machine["host"]["architecture"] == CAPTURES[name].architecture
    assert machine["cpu"]["model"] == CAPTURES[name].model
