"""The real probes on this machine, compared with what the system itself says."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import pytest

from auditor.probes.base import ProbeContext
from auditor.probes.cpu import X86_FEATURES, collect_cpu
from auditor.probes.fsroot import FsRoot
from auditor.probes.host import collect_host, collect_python
from auditor.probes.memory import collect_memory
from auditor.probes.packages import collect_packages

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc like the Linux back-end")

CTX = ProbeContext(FsRoot(), os.environ)


def _cpuinfo_field(name: str) -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.split(":")[0].strip() == name:
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"/proc/cpuinfo has no {name}")


def test_cpu_model_vendor_and_counts_match_the_system():
    cpu = collect_cpu(CTX)
    assert cpu.model == _cpuinfo_field("model name")
    assert cpu.vendor == _cpuinfo_field("vendor_id")
    assert cpu.logical_cpus == os.cpu_count()
    assert cpu.affinity_cpus == len(os.sched_getaffinity(0))
    assert cpu.usable_cpus == min(os.cpu_count(), len(os.sched_getaffinity(0)))
    assert cpu.architecture == platform.machine()


def test_cpu_features_match_proc_cpuinfo_flags():
    flags = set(_cpuinfo_field("flags").split())
    cpu = collect_cpu(CTX)
    assert cpu.features == {name: flag in flags for name, flag in X86_FEATURES.items()}
    assert cpu.features["avx"] == ("avx" in flags)


def test_memory_matches_proc_meminfo_and_dev_shm():
    meminfo = {}
    with open("/proc/meminfo") as text:
        for line in text:
            key, value = line.split(":")
            meminfo[key] = int(value.split()[0]) * 1024
    memory = collect_memory(CTX)
    assert memory.total_bytes == meminfo["MemTotal"]
    assert memory.swap_total_bytes == meminfo["SwapTotal"]
    shm = os.statvfs("/dev/shm")
    assert memory.shm_bytes == shm.f_frsize * shm.f_blocks
    assert memory.usable_bytes <= memory.total_bytes


def test_python_facts_are_this_interpreter():
    python = collect_python(CTX)
    assert python.executable == sys.executable
    assert python.version == platform.python_version()
    assert python.prefix == sys.prefix
    assert python.environment == ("venv" if sys.prefix != sys.base_prefix else python.environment)


def test_host_kernel_and_os_release_match_the_system():
    host = collect_host(CTX)
    assert host.kernel == platform.release()
    with open("/etc/os-release") as text:
        pretty = next(line.split("=", 1)[1].strip().strip('"') for line in text if line.startswith("PRETTY_NAME="))
    assert host.os_release == pretty


def test_packages_match_distribution_metadata():
    packages = collect_packages(CTX).installed
    assert packages["torch"].version == metadata.version("torch")
    tensorflow = next(name for name in ("tensorflow", "tensorflow-cpu") if name in packages)
    assert packages[tensorflow].version == metadata.version(tensorflow)
    assert "tensorflow" in packages[tensorflow].modules
    assert packages["nvidia-ml-py"].modules == sorted(metadata.distribution("nvidia-ml-py").read_text("top_level.txt").split())
    assert "click" not in packages  # only ML-relevant distributions are listed



def test_cuda_toolkit_is_what_nvcc_and_the_loader_say():
    import re
    import shutil
    import subprocess

    from auditor.probes.base import ProbeAbsent
    from auditor.probes.cuda_toolkit import collect_cuda_toolkit

    nvcc = shutil.which("nvcc")
    try:
        toolkit = collect_cuda_toolkit(CTX)
    except ProbeAbsent:
        assert nvcc is None
        return
    assert toolkit.nvcc_path == nvcc
    if nvcc:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
        assert toolkit.nvcc_version == re.search(r"V([\d.]+)", out).group(1)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for stem, path in toolkit.libraries.items():
        assert f"=> {path}" in cache or path.startswith(tuple(os.environ.get("LD_LIBRARY_PATH", "-").split(":")))


def test_pci_scan_matches_sysfs():
    from auditor.probes.pci import classify, collect_pci

    expected = []
    for address in sorted(os.listdir("/sys/bus/pci/devices")):
        base = f"/sys/bus/pci/devices/{address}"
        ids = [open(f"{base}/{name}").read().strip() for name in ("vendor", "device", "class")]
        if classify(*ids):
            expected.append(address)
    assert [device.address for device in collect_pci(CTX)] == expected
