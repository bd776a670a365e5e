"""Inline probes against hostile inputs: files that are not files, helpers that misbehave,
drivers that report absurd counts, and an auditor interrupted in the middle of them.

Everything is a real file or a real process: fake roots hold a FIFO, a 1 GiB sparse file
or a character device made with mknod (in a temporary directory, never the real /dev);
fake nvcc and nvidia-smi executables are shell scripts put on PATH; the fake NVML is the
compiled library of tests/fakes/nvml.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nvml_fake
from auditor.checks import run_checks
from auditor.facts import NvidiaFacts, from_dict
from auditor.probes import cpu, nvidia_smi, processes
from auditor.probes.base import InlineProbe, ProbeContext
from auditor.probes.cpu import collect_cpu
from auditor.probes.cuda_toolkit import collect_cuda_toolkit
from auditor.probes.fsroot import READ_LIMIT, FsRoot, UnreadableFile
from auditor.probes.runner import _run_inline
from conftest import quick_snapshot, run_auditor
from leftovers import TAG, kill_tagged, new_tag, scratch_left, survivors
from machines import linux_machine
from nvml_fake import gpu_line, nvml_env, without_nvidia_smi

fake_nvml_dir = nvml_fake.fake_nvml_dir  # the session fixture that builds the fake libnvidia-ml.so.1



def executable(directory: Path, name: str, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(script).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def gone(pid: int, wait_s: float = 5.0) -> bool:
    """True once pid no longer runs (gone, or a zombie awaiting its reaper)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in (b"Z", b"X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def pids_in(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --- reads are bounded ---------------------------------------------------------------------


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "is a FIFO, not a file"


def _sparse_gib(path: Path) -> str:
    with open(path, "wb") as out:
        out.truncate(1 << 30)
    return f"holds more than {READ_LIMIT >> 20} MiB"


def _zero_device(path: Path) -> str:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # what /dev/zero is: reading never ends
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    return "is a character device, not a file"


@pytest.mark.parametrize("make", [_fifo, _sparse_gib, _zero_device], ids=["fifo", "1-gib-sparse", "char-device"])
def test_a_cpuinfo_that_is_not_a_text_file_is_a_probe_error_in_milliseconds(fake_root, make):
    files = linux_machine()
    del files["/proc/cpuinfo"]
    root = fake_root(files)
    why = make(root.path("/proc/cpuinfo"))

    started = time.perf_counter()
    with pytest.raises(UnreadableFile) as refused:
        collect_cpu(ProbeContext(root, {}))
    assert time.perf_counter() - started < 0.1
    assert str(refused.value).startswith(f"{root.path('/proc/cpuinfo')} {why}")

    snapshot = quick_snapshot(root)
    for name in ("cpu", "host"):  # host reads /proc/cpuinfo for the hypervisor flag
        run = snapshot.probe(name)
        assert run.status == "error", run
        assert run.reason.startswith("UnreadableFile: ") and why in run.reason
        assert run.duration_s < 0.1
    assert snapshot.probe("memory").status == "ok"  # its files are fine
    assert snapshot.machine.memory.total_bytes == 64 << 30


def test_a_file_just_within_the_limit_is_read_and_one_past_it_is_refused(tmp_path):
    root = FsRoot(tmp_path)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "big").write_bytes(b"a" * READ_LIMIT)
    (tmp_path / "etc" / "bigger").write_bytes(b"a" * (READ_LIMIT + 1))

    assert len(root.read_text("/etc/big")) == READ_LIMIT
    with pytest.raises(UnreadableFile):
        root.read_text("/etc/bigger")
    assert root.read_text("/etc/missing") is None
    assert root.read_text("/etc") is None  # a directory is not there as a file, as before


def test_the_cli_reports_a_fifo_root_in_seconds_with_a_finding(fake_root):
    files = linux_machine()
    del files["/proc/cpuinfo"]
    root = fake_root(files)
    os.mkfifo(root.path("/proc/cpuinfo"))

    started = time.monotonic()
    result = run_auditor("audit", "--quick", "--format", "json", "--root", str(root.root), timeout=60)

    assert time.monotonic() - started < 30  # no one ever writes to the FIFO
    assert result.returncode == 0, result.stderr  # AUD001 is a warning
    report = json.loads(result.stdout)
    aud = [f for f in report["findings"] if f["code"] == "AUD001"]
    assert sorted(f["title"].split()[1] for f in aud) == ["cpu", "host"]
    assert any("is a FIFO, not a file" in line for f in aud for line in f["evidence"])


def test_an_inline_probe_past_its_deadline_is_a_timeout(tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)

    def stuck(_ctx):  # a read that no bound was thought of for: open() of a FIFO blocks
        with open(fifo) as never:
            return never.read()

    runs = []
    handler_before = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    facts = _run_inline(InlineProbe("stuck", "machine.host", stuck), ProbeContext(FsRoot(tmp_path), {}), runs,
                        started, deadline_s=0.5)

    assert facts is None
    assert [(run.name, run.status, run.reason) for run in runs] == [("stuck", "timeout", "no answer within 0.5 s; stopped")]
    assert 0.5 <= time.monotonic() - started < 2
    assert signal.getsignal(signal.SIGALRM) == handler_before  # put back as it was
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# --- helpers end with their process, and are killed with their group ------------------------


def test_nvidia_smi_that_leaves_a_job_holding_its_stdout_answers_at_once(tmp_path):
    pid_file = tmp_path / "pids"
    good = nvml_fake.replaying_smi(nvml_fake.GOOD_CAPTURE, tmp_path / "good")
    smi = executable(tmp_path / "bin", "nvidia-smi", f"""
        #!/bin/sh
        # Like a tool that starts a daemon and forgets to close its stdout.
        sleep 100 &
        echo $! >> "{pid_file}"
        exec "{good}" "$@"
    """)
    try:
        started = time.monotonic()
        facts = from_dict(NvidiaFacts, nvidia_smi.collect(timeout_s=10, executable=str(smi)))
        elapsed = time.monotonic() - started

        assert elapsed < 3, elapsed  # not the 10 s deadline: the process exit ends the wait
        assert (facts.driver_version, facts.cuda_driver_version, len(facts.gpus)) == ("550.54.15", "12.4", 2)
        assert facts.gpus[0].uuid == "GPU-5f1ff6b5-2c1e-6a3b-8e5c-1c0a9d3f4b21"
        sleeps = pids_in(pid_file)
        assert len(sleeps) == 3  # the query, the table and the list
        assert all(gone(pid) for pid in sleeps), "a background job outlived nvidia-smi"
    finally:
        kill_all(pids_in(pid_file))


def test_nvcc_that_leaves_a_job_holding_its_stdout_answers_at_once(tmp_path):
    pid_file = tmp_path / "pids"
    bin_dir = tmp_path / "bin"
    executable(bin_dir, "nvcc", f"""
        #!/bin/sh
        sleep 100 &
        echo $! >> "{pid_file}"
        echo "nvcc: NVIDIA (R) Cuda compiler driver"
        echo "Cuda compilation tools, release 12.4, V12.4.131"
    """)
    try:
        started = time.monotonic()
        facts = collect_cuda_toolkit(ProbeContext(FsRoot(), {"PATH": str(bin_dir)}))

        assert time.monotonic() - started < 3
        assert (facts.nvcc_path, facts.nvcc_version) == (str(bin_dir / "nvcc"), "12.4.131")
        (sleep,) = pids_in(pid_file)
        assert gone(sleep)
    finally:
        kill_all(pids_in(pid_file))


def test_a_hung_helper_is_killed_with_its_whole_group_at_the_deadline(tmp_path):
    pid_file = tmp_path / "pids"
    script = f'sleep 100 & echo $! >> "{pid_file}"; echo $$ >> "{pid_file}"; echo partial; exec sleep 100'
    started = time.monotonic()
    try:
        with pytest.raises(processes.HelperError) as raised:
            processes.output_of(["sh", "-c", script], 0.5)
        assert str(raised.value) == "sh did not answer within 0.5 s; killed"
        assert time.monotonic() - started < 2.5
        pids = pids_in(pid_file)
        assert len(pids) == 2 and all(gone(pid) for pid in pids)
    finally:
        kill_all(pids_in(pid_file))


def test_a_helper_flooding_its_stdout_is_stopped_at_the_limit():
    started = time.monotonic()
    with pytest.raises(processes.HelperError) as raised:
        processes.output_of(["sh", "-c", "exec yes"], 10, stdout_limit=1 << 20)
    assert str(raised.value) == "sh wrote more than 1 MiB; killed"
    assert time.monotonic() - started < 3


def test_py_cpuinfo_runs_as_a_bounded_helper(tmp_path, monkeypatch):
    info = cpu._cpuinfo()  # the real py-cpuinfo, through its own --json entry point
    assert info["count"] == os.cpu_count()
    assert info["brand_raw"]

    pid_file = tmp_path / "pids"
    fakes = tmp_path / "fakes" / "cpuinfo"
    fakes.mkdir(parents=True)
    (fakes / "__init__.py").write_text("")
    (fakes / "cpuinfo.py").write_text(textwrap.dedent(f"""
        import os, subprocess, time
        def main():  # CPUID that never returns, with a helper of its own, as py-cpuinfo starts one
            helper = subprocess.Popen(["sleep", "100"])
            open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{helper.pid}}")
            time.sleep(100)
    """))
    monkeypatch.setenv("PYTHONPATH", str(fakes.parent))
    monkeypatch.setattr(cpu, "CPUINFO_DEADLINE_S", 1.0)
    try:
        with pytest.raises(processes.HelperError) as raised:
            cpu._collect_other()
        assert str(raised.value) == "py-cpuinfo did not answer within 1 s; killed"
        pids = pids_in(pid_file)
        assert len(pids) == 2 and all(gone(pid) for pid in pids)
    finally:
        kill_all(pids_in(pid_file))


# --- absurd counts are capped, with a finding --------------------------------------------


def test_100000_nvidia_smi_rows_are_capped_with_a_finding(tmp_path, fake_root):
    row = ("%d, GPU-%08d, NVIDIA A100-SXM4-80GB, 81920, 81050, 8.0, 00000000:07:00.0, 550.54.15, "
           "Disabled, Disabled, Default, 400.00, 400.00, 4, 4, 16, 16, 0x0000000000000000\\n")
    smi = executable(tmp_path / "bin", "nvidia-smi", f"""
        #!/bin/sh
        if [ "$#" -eq 0 ]; then
            echo "| NVIDIA-SMI 550.54.15      Driver Version: 550.54.15      CUDA Version: 12.4     |"
            exit 0
        fi
        exec awk 'BEGIN {{ for (i = 0; i < 100000; i++) printf "{row}", i, i }}'
    """)
    started = time.monotonic()
    facts = from_dict(NvidiaFacts, nvidia_smi.collect(timeout_s=20, executable=str(smi)))

    assert time.monotonic() - started < 10
    assert len(facts.gpus) == nvidia_smi.MAX_GPUS
    assert facts.gpus[-1].uuid == f"GPU-{nvidia_smi.MAX_GPUS - 1:08d}"
    assert facts.gpus_left_out == 100_000 - nvidia_smi.MAX_GPUS
    assert facts.cuda_driver_version == "12.4"

    snapshot = quick_snapshot(fake_root(linux_machine()))
    snapshot.accelerators.nvidia = facts
    (finding,) = [f for f in run_checks(snapshot) if f.code == "AUD002"]
    assert finding.severity == "warning"
    assert finding.title == f"The NVIDIA driver reported 100000 GPUs; only the first {nvidia_smi.MAX_GPUS} are in this report"
    assert finding.evidence == [f"nvidia-smi: 100000 GPUs, {100_000 - nvidia_smi.MAX_GPUS} left out"]


def test_10000_gpus_from_nvml_are_capped_with_a_finding(fake_nvml_dir, tmp_path):
    description = "driver 570.86.15\ncuda 12080\n" + gpu_line(
        name="NVIDIA H100 80GB HBM3", uuid="GPU-1", cc="9.0", mem_total=1 << 30, bus="00000000:18:00.0") + "\ncount 10000\n"
    env = without_nvidia_smi(nvml_env(description, tmp_path), tmp_path)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--quick", "--format", "json"],
                            capture_output=True, text=True, env=env, timeout=120)

    assert time.monotonic() - started < 30
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    nvidia = from_dict(NvidiaFacts, report["accelerators"]["nvidia"])
    assert (len(nvidia.gpus), nvidia.gpus_left_out) == (nvidia_smi.MAX_GPUS, 10_000 - nvidia_smi.MAX_GPUS)
    assert [gpu.index for gpu in nvidia.gpus] == list(range(nvidia_smi.MAX_GPUS))
    (finding,) = [f for f in report["findings"] if f["code"] == "AUD002"]
    assert finding["evidence"] == [f"nvml: 10000 GPUs, {10_000 - nvidia_smi.MAX_GPUS} left out"]


# --- the auditor interrupted during the inline phase ---------------------------------------


HUNG_NVCC = """
    #!/bin/sh
    # A compiler wedged on a network file system, with a daemon of its own in a new session.
    setsid sleep 300 &
    echo $$ $! >> "{pid_file}"
    exec sleep 300
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_nothing_outlives_an_audit_ended_during_the_inline_phase(tmp_path, signum):
    tag, tmpdir, pid_file = new_tag(), tmp_path / "tmp", tmp_path / "pids"
    tmpdir.mkdir()
    bin_dir = tmp_path / "bin"
    executable(bin_dir, "nvcc", HUNG_NVCC.format(pid_file=pid_file))
    env = {**os.environ, TAG: tag, "TMPDIR": str(tmpdir), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AUDITOR_DEBUG", None)
    audit = subprocess.Popen([sys.executable, "-m", "auditor", "audit", "--quick", "--format", "json"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(pids_in(pid_file)) < 2 and time.monotonic() < deadline and audit.poll() is None:
            time.sleep(0.05)
        assert len(pids_in(pid_file)) == 2, "the fake nvcc never ran"
        if signum == signal.SIGTERM:
            audit.send_signal(signum)
        else:  # as a terminal sends Ctrl-C and hangups: to the foreground process group
            os.killpg(audit.pid, signum)
        _, stderr = audit.communicate(timeout=30)

        if signum == signal.SIGKILL:
            assert audit.returncode == -signal.SIGKILL
        else:
            assert audit.returncode == 128 + signum
            assert stderr.strip() == f"auditor: error: interrupted by {signal.Signals(signum).name}"
        assert survivors(tag) == []
        assert scratch_left(tmpdir) == []  # the NVIDIA probe's child had one
    finally:
        kill_tagged(tag)
        if audit.poll() is None:
            audit.kill()
        audit.communicate()
