"""A fake NVIDIA driver for tests: a real libnvidia-ml.so.1 built from tests/fakes/nvml/fake_nvml.c,
and fake nvidia-smi executables from tests/fakes/nvidia-smi/.

Nothing is patched: the library is compiled with the machine's C compiler and put first
on the LD_LIBRARY_PATH of the audit's child process, where pynvml's own
``CDLL("libnvidia-ml.so.1")`` finds it; a fake nvidia-smi is put first on PATH. The
machine the library pretends to be is a text file (format: the comment at the top of
fake_nvml.c) named by FAKE_NVML_MACHINE.

Use::

    import nvml_fake
    from nvml_fake import nvml_env, with_nvidia_smi

    fake_nvml_dir = nvml_fake.fake_nvml_dir  # makes the session fixture visible in this module

    def test_x(fake_nvml_dir, tmp_path):
        env = nvml_env("driver 570.86.15\\ngpu name=\\"...\\" ...", tmp_path)
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import pytest

FAKES = Path(__file__).parent / "fakes"
SOURCE = FAKES / "nvml" / "fake_nvml.c"
SMI_FAKES = FAKES / "nvidia-smi"
GOOD_CAPTURE = SMI_FAKES / "a100-mig-550.54.15.txt"
LIBRARY = "libnvidia-ml.so.1"

_built: Optional[Path] = None  # the directory holding the compiled library, once built


def find_compiler() -> Optional[str]:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def build_fake_nvml(directory: Path) -> Path:
    """Compile fake_nvml.c into directory/libnvidia-ml.so.1; the directory."""
    compiler = find_compiler()
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc, gcc, clang or $CC) to build the fake libnvidia-ml.so.1")
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(directory / LIBRARY), str(SOURCE)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"building the fake {LIBRARY} failed:\n{result.stderr}")
    return directory


@pytest.fixture(scope="session")
def fake_nvml_dir(tmp_path_factory) -> Path:
    """The directory holding the fake libnvidia-ml.so.1, compiled once per test session."""
    global _built
    if find_compiler() is None:
        pytest.skip("no C compiler (cc, gcc, clang or $CC) to build the fake libnvidia-ml.so.1")
    _built = build_fake_nvml(tmp_path_factory.mktemp("fake-nvml"))
    return _built


def nvml_env(description: Optional[str], tmp_path: Path, lib_dir: Optional[Path] = None,
             log: bool = False) -> dict[str, str]:
    """A copy of os.environ in which a child process loads the fake NVML describing this machine.

    ``description`` None leaves FAKE_NVML_MACHINE unset (nvmlInit: DRIVER_NOT_LOADED).
    ``log`` sets FAKE_NVML_LOG to tmp_path/"nvml-calls.log" (see calls()).
    """
    lib_dir = lib_dir or _built
    if lib_dir is None:
        raise RuntimeError("the fake NVML is not built: request the fake_nvml_dir fixture first")
    env = dict(os.environ)
    env.pop("FAKE_NVML_MACHINE", None)
    env.pop("FAKE_NVML_LOG", None)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(lib_dir), env.get("LD_LIBRARY_PATH")) if p)
    if description is not None:
        # A new file per call: two environments built in one test must not share a machine.
        handle, name = tempfile.mkstemp(prefix="fake-nvml-machine-", suffix=".txt", dir=tmp_path)
        os.close(handle)
        machine = Path(name)
        machine.write_text(description)
        env["FAKE_NVML_MACHINE"] = str(machine)
    if log:
        env["FAKE_NVML_LOG"] = str(tmp_path / "nvml-calls.log")
    return env


def calls(tmp_path: Path) -> list[str]:
    """The NVML functions the fake library was called with, in order (nvml_env(log=True))."""
    path = tmp_path / "nvml-calls.log"
    return path.read_text().split() if path.exists() else []


def with_nvidia_smi(env: dict[str, str], kind: str, tmp_path: Path) -> dict[str, str]:
    """env with a fake nvidia-smi first on PATH: ``kind`` is a script in tests/fakes/nvidia-smi/
    (hang, garbage, failing), "good" (the invented two-A100 machine) or the path of a capture
    to replay (tests/recorded/nvidia-smi/*.txt)."""
    bin_dir = tmp_path / f"nvidia-smi-{Path(kind).stem}"
    if kind == "good" or kind.endswith(".txt"):
        replaying_smi(GOOD_CAPTURE if kind == "good" else Path(kind), bin_dir)
    else:
        bin_dir.mkdir(exist_ok=True)
        target = bin_dir / "nvidia-smi"
        shutil.copyfile(SMI_FAKES / kind, target)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {**env, "PATH": os.pathsep.join(p for p in (str(bin_dir), env.get("PATH")) if p)}


def replaying_smi(capture: Path, bin_dir: Path) -> Path:
    """bin_dir/nvidia-smi, answering as the driver recorded in ``capture`` did (replay.py)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / "nvidia-smi"
    target.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SMI_FAKES / "replay.py"}" "{capture}" "$@"\n')
    target.chmod(0o755)
    return target


def without_nvidia_smi(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """env whose PATH finds no nvidia-smi, even on a machine that has one (the child needs no PATH)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {**env, "PATH": str(empty)}


def without_fake_nvml(env: dict[str, str]) -> dict[str, str]:
    """env with the fake library's directory taken off LD_LIBRARY_PATH again."""
    keep = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and not (Path(p) / LIBRARY).exists()]
    env = {key: value for key, value in env.items() if not key.startswith("FAKE_NVML_")}
    if keep:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(keep)
    else:
        env.pop("LD_LIBRARY_PATH", None)
    return env


# --- machine descriptions -------------------------------------------------------------

MIB = 1024 * 1024


def gpu_line(**keys) -> str:
    """A ``gpu`` statement; string values with blanks are quoted."""
    words = [f'{key}="{value}"' if isinstance(value, str) and " " in value else f"{key}={value}"
             for key, value in keys.items()]
    return "gpu " + " ".join(words)


H100_BUSES = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]  # a DGX H100's GPUs


def h100_uuid(index: int) -> str:
    return f"GPU-{0x6b3c1d20 + index:08x}-91f4-{0x4a10 + index:04x}-b7c2-0c9e5d{index:02x}a17f"


H100_MIG = [  # (slot, uuid, memory) of GPU 0's MIG devices; slot 2 is left empty on purpose
    (0, "MIG-4f2d9c8a-1b3e-5f60-9a7b-2c4d6e8f0a1b", 40 * 1024 * MIB),
    (1, "MIG-7a1c3e5f-2b4d-5e6f-8a9b-0c1d2e3f4a5b", 20 * 1024 * MIB),
    (3, "MIG-9e8d7c6b-5a4f-5e3d-2c1b-0a9f8e7d6c5b", 10 * 1024 * MIB),
]
H100_TOTAL = 81559 * MIB


def h100_node(extra: str = "") -> str:
    """A DGX-like node: driver 570.86.15 (CUDA 12.8), eight H100 80GB HBM3, MIG on GPU 0."""
    lines = ["# 8x H100 SXM, MIG enabled on GPU 0 with three instances",
             "driver 570.86.15", "cuda 12080", "nvml 12.570.86.15"]
    for index, bus in enumerate(H100_BUSES):
        if index == 0:
            mig = dict(mig_current=1, mig_pending=1, max_mig=7)
        else:
            mig = dict(mig_current=0, mig_pending=int(index == 7))  # GPU 7: enabled at the next reset
        lines.append(gpu_line(
            name="NVIDIA H100 80GB HBM3", uuid=h100_uuid(index), brand=14, arch=9, cc="9.0",
            mem_total=H100_TOTAL, mem_free=H100_TOTAL - (index + 1) * 512 * MIB, mem_reserved=0,
            bus=f"00000000:{bus}:00.0", pci_id="0x233010DE", **mig,
            compute_mode=3 if index == 7 else 0, power_mw=700000, power_default_mw=700000,
            procs=0 if index == 0 else index % 4))
    for slot, uuid, memory in H100_MIG:
        lines.append(f'mig gpu=0 index={slot} uuid={uuid} mem_total={memory} name="NVIDIA H100 80GB HBM3 MIG"')
    return "\n".join(lines) + "\n" + extra


RTX_5090 = "\n".join([
    "driver 575.51.02", "cuda 12090", "nvml 12.575.51.02",
    gpu_line(name="NVIDIA GeForce RTX 5090", uuid="GPU-0e4b5c6d-7f80-91a2-b3c4-d5e6f7a8b9c0", brand=5, arch=10,
             cc="12.0", mem_total=32607 * MIB, mem_free=31000 * MIB, bus="00000000:01:00.0", pci_id="0x2B8510DE",
             compute_mode=0, power_mw=575000, procs=1),
]) + "\n"
