"""A broken framework costs only its own probe.

Each scenario builds deliberately broken stand-ins for ``torch`` or ``tensorflow`` in a
temporary directory and puts that directory first on the probe children's path through
PYTHONPATH. The real wheels stay installed, so package metadata still says the framework
is there (and which version); only the import is shadowed. The audit runs as a real
subprocess (``python -m auditor audit``), exactly as a user would run it.

Each scenario is one audit, shared by the tests that read it (module-scoped fixtures),
because a full audit imports the real TensorFlow and torch and costs a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

IMPORT_ERROR = "libcudart.so.12: cannot open shared object file: No such file or directory"
CRASH_LAST_WORDS = "fake torch: about to dereference a null pointer"
HANG_DEADLINE_S = 12  # TensorFlow alone takes 4-5 s to import and prove on a busy 2-core machine

# Fake modules. Each is the whole __init__.py of a package that shadows the real one.
FAKE_IMPORT_ERROR = f"""
    print("noise a broken framework prints on stdout before failing")
    raise ImportError({IMPORT_ERROR!r})
"""
# Writes its own PID and that of a helper it starts (in its process group), then hangs.
FAKE_HANG = """
    import os, subprocess, sys, time
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # fake helper"])
    with open(os.environ["FAKE_PID_FILE"], "w") as out:
        out.write(f"{os.getpid()} {helper.pid}")
    time.sleep(600)
"""
FAKE_SEGFAULT = f"""
    import os, signal, sys
    sys.stderr.write({CRASH_LAST_WORDS!r} + "\\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGSEGV)
"""
FAKE_ABORT = """
    import os, sys
    sys.stderr.write("free(): invalid pointer\\n")
    sys.stderr.flush()
    os.abort()
"""
FAKE_EXIT_WITHOUT_RESULT = """
    import os
    os._exit(3)
"""
FAKE_FAST_FAILURE = """
    raise ImportError("fake: not the framework under test")
"""


@dataclass
class Audit:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> dict:
        return json.loads(self.stdout)


def make_fakes(directory: Path, **modules: str) -> Path:
    """directory/<module>/__init__.py for each module=source; returns directory."""
    for module, source in modules.items():
        package = directory / module
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(textwrap.dedent(source))
    return directory


def _no_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start_audit(workdir: Path, fakes: Path, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("AUDITOR_DEBUG", "PYTHONPATH")}
    env["PYTHONPATH"] = str(fakes)
    env.update(extra_env or {})
    return subprocess.Popen([sys.executable, "-m", "auditor", "audit", *args], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_no_core_dumps)


def finish(process: subprocess.Popen, started: float, timeout: float) -> Audit:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        pytest.fail(f"the audit did not finish within {timeout} s")
    return Audit(process.returncode, stdout, stderr, time.monotonic() - started)


def run_audit(workdir: Path, fakes: Path, *args: str, timeout: float = 120, extra_env: dict | None = None) -> Audit:
    started = time.monotonic()
    return finish(start_audit(workdir, fakes, *args, extra_env=extra_env), started, timeout)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def process_gone(pid: int, wait_s: float = 5.0) -> bool:
    """True once pid no longer runs (gone, or a zombie awaiting its reaper)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = "?"
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def kill_leftovers(pids: list[int]) -> None:
    """Clean up after a failing test: kill only processes our fakes started."""
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"sleep(600)" in cmdline or b"child_main" in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def read_pids(pid_file: Path, wait_s: float = 0.0) -> list[int]:
    deadline = time.monotonic() + wait_s
    while True:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text.strip():
            return [int(pid) for pid in text.split()]
        if time.monotonic() > deadline:
            return []
        time.sleep(0.05)


def finding(report: dict, code: str) -> dict:
    hits = [f for f in report["findings"] if f["code"] == code]
    assert len(hits) == 1, f"expected one {code} finding, got {[f['code'] for f in report['findings']]}"
    return hits[0]


def probe(report: dict, name: str) -> dict:
    (run,) = [run for run in report["probes"] if run["name"] == name]
    return run


def assert_tensorflow_proved_a_computation(report: dict) -> None:
    tf = report["frameworks"]["tensorflow"]
    assert tf["probe"]["status"] == "ok"
    assert probe(report, "tensorflow")["status"] == "ok"
    assert tf["version"] == metadata.version(tf["distribution"])
    cpu_proofs = [p for p in tf["proofs"] if p["device"].endswith("CPU:0") and not p["skipped"]]
    assert len(cpu_proofs) >= 3 and all(p["ok"] for p in cpu_proofs), tf["proofs"]
    assert cpu_proofs[0]["max_relative_error"] <= cpu_proofs[0]["tolerance"]
    (readiness,) = [fw for fw in report["readiness"]["frameworks"] if fw["framework"] == "tensorflow"]
    assert readiness["status"] == "ready"


def assert_other_probes_unharmed(report: dict, broken: str) -> None:
    statuses = {run["name"]: run["status"] for run in report["probes"]}
    assert {"packages", "host", "python", "cpu", "memory", "tensorflow", "torch", "nvidia"} <= set(statuses)
    for name in ("packages", "host", "python", "cpu", "memory"):
        assert statuses[name] == "ok", (name, statuses)
    assert statuses["nvidia"] in ("ok", "absent")
    assert report["machine"]["cpu"]["logical_cpus"] >= 1
    assert "AUD001" not in [f["code"] for f in report["findings"]]  # no non-framework probe failed
    assert broken in statuses


# --- an import that raises -------------------------------------------------------------


@pytest.fixture(scope="module")
def import_error_audit(tmp_path_factory) -> Audit:
    work = tmp_path_factory.mktemp("import-error")
    fakes = make_fakes(work / "fakes", torch=FAKE_IMPORT_ERROR)
    return run_audit(work, fakes, "--format", "json", "--timeout", "60")


def test_import_error_is_recorded_as_the_torch_probe_error(import_error_audit):
    report = import_error_audit.report()
    torch = report["frameworks"]["torch"]
    assert torch["probe"]["status"] == "error"
    assert torch["probe"]["reason"] == f"ImportError: {IMPORT_ERROR}"
    assert probe(report, "torch")["status"] == "error"
    # metadata still names the installed wheel even though the import failed
    assert torch["distribution"] == "torch"
    assert torch["distribution_version"] == metadata.version("torch")
    assert torch["version"] is None and torch["proofs"] == []
    (readiness,) = [fw for fw in report["readiness"]["frameworks"] if fw["framework"] == "torch"]
    assert readiness["status"] == "not-importable"


def test_import_error_raises_fw001_and_exit_1(import_error_audit):
    report = import_error_audit.report()
    fw001 = finding(report, "FW001")
    assert fw001["severity"] == "error"
    assert f"torch {metadata.version('torch')}" in fw001["title"]
    assert any(IMPORT_ERROR in line for line in fw001["evidence"])
    codes = [f["code"] for f in report["findings"]]
    assert "FW002" not in codes and "FW003" not in codes
    assert report["readiness"]["status"] == "not-ready"
    assert import_error_audit.returncode == 1


def test_import_error_costs_only_the_torch_probe(import_error_audit):
    report = import_error_audit.report()
    assert_tensorflow_proved_a_computation(report)
    assert_other_probes_unharmed(report, "torch")
    # every framework but the broken one is still recommended
    assert "torch" not in [c["framework"] for c in report["recommendation"]["choices"]]
    assert "tensorflow" in [c["framework"] for c in report["recommendation"]["choices"]]
    # the stdout noise of the fake went to the child's stderr, not into the report or the result
    assert "noise a broken framework prints" not in import_error_audit.stdout
    assert import_error_audit.stderr == ""


# --- an import that hangs --------------------------------------------------------------


@pytest.fixture(scope="module")
def hang_audit(tmp_path_factory):
    work = tmp_path_factory.mktemp("hang")
    fakes = make_fakes(work / "fakes", torch=FAKE_HANG)
    pid_file = work / "pids"
    audit = run_audit(work, fakes, "--format", "json", "--timeout", str(HANG_DEADLINE_S), timeout=60,
                      extra_env={"FAKE_PID_FILE": str(pid_file)})
    pids = read_pids(pid_file)
    yield audit, pids
    kill_leftovers(pids)


def test_hang_is_a_timeout_with_fw003_and_exit_1(hang_audit):
    audit, _ = hang_audit
    report = audit.report()
    torch = report["frameworks"]["torch"]
    assert torch["probe"]["status"] == "timeout"
    assert torch["probe"]["reason"] == f"no answer within {HANG_DEADLINE_S} s; killed"
    assert torch["probe"]["duration_s"] >= HANG_DEADLINE_S - 0.1  # it did wait for the deadline
    fw003 = finding(report, "FW003")
    assert fw003["severity"] == "error"
    assert "torch" in fw003["title"]
    assert audit.returncode == 1


def test_hang_does_not_hold_the_audit(hang_audit):
    audit, _ = hang_audit
    assert audit.seconds < 60  # the fake sleeps 600 s
    report = audit.report()
    assert_tensorflow_proved_a_computation(report)
    assert_other_probes_unharmed(report, "torch")


def test_hung_child_and_its_helper_are_killed(hang_audit):
    _, pids = hang_audit
    assert len(pids) == 2, "the fake torch never ran: the child did not import it"
    child, helper = pids
    with pytest.raises(ProcessLookupError):  # the runner reaped its own child
        os.kill(child, 0)
    assert process_gone(helper), "the helper in the child's process group survived the kill"


# --- an import that kills its process --------------------------------------------------


@pytest.fixture(scope="module")
def segfault_audit(tmp_path_factory) -> Audit:
    work = tmp_path_factory.mktemp("segfault")
    fakes = make_fakes(work / "fakes", torch=FAKE_SEGFAULT)
    return run_audit(work, fakes, "--format", "json", "--timeout", "60")


def test_segfault_is_a_crash_naming_the_signal(segfault_audit):
    report = segfault_audit.report()
    torch = report["frameworks"]["torch"]
    assert torch["probe"]["status"] == "crashed"
    # the signal, then the last line the child wrote on stderr
    assert torch["probe"]["reason"] == f"killed by SIGSEGV: {CRASH_LAST_WORDS}"
    fw002 = finding(report, "FW002")
    assert fw002["severity"] == "error"
    assert any("SIGSEGV" in line for line in fw002["evidence"])
    assert "FW001" not in [f["code"] for f in report["findings"]]
    assert segfault_audit.returncode == 1


def test_segfault_costs_only_the_torch_probe(segfault_audit):
    report = segfault_audit.report()
    assert_tensorflow_proved_a_computation(report)
    assert_other_probes_unharmed(report, "torch")
    assert segfault_audit.stderr == ""


# --- a broken TensorFlow, in the text format ----------------------------------------------


@pytest.fixture(scope="module")
def tensorflow_abort_text_audit(tmp_path_factory) -> Audit:
    work = tmp_path_factory.mktemp("tf-abort")
    fakes = make_fakes(work / "fakes", tensorflow=FAKE_ABORT)
    return run_audit(work, fakes, "--timeout", "60")  # text is the default format


def test_text_report_shows_the_crash_without_a_traceback(tensorflow_abort_text_audit):
    audit = tensorflow_abort_text_audit
    assert audit.returncode == 1
    assert "Traceback" not in audit.stderr and "Traceback" not in audit.stdout
    assert audit.stderr == ""
    assert "FW002" in audit.stdout
    assert "SIGABRT" in audit.stdout
    assert "Readiness: NOT-READY" in audit.stdout
    assert not audit.stdout.lstrip().startswith("{")  # text, not JSON


def test_text_report_still_proves_torch(tensorflow_abort_text_audit):
    out = tensorflow_abort_text_audit.stdout
    # The answer rests on torch's proof.
    assert "Answer: Use PyTorch on the CPU for" in out and "[✗] TensorFlow" in out
    # Below 110 columns each framework's name heads its rows.
    assert re.search(r"│ PyTorch +│\n│ cpu +float32 +eager +matmul, conv2d, train-step +\d\.\de-\d\d of 2e-03", out), out
    assert "FW001" not in out and "FW003" not in out


# --- --fail-on never ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fail_on_never_audit(tmp_path_factory) -> Audit:
    work = tmp_path_factory.mktemp("fail-on-never")
    fakes = make_fakes(work / "fakes", torch=FAKE_IMPORT_ERROR, tensorflow=FAKE_EXIT_WITHOUT_RESULT)
    return run_audit(work, fakes, "--format", "json", "--fail-on", "never", "--timeout", "60")


def test_fail_on_never_exits_0_but_keeps_the_findings(fail_on_never_audit):
    assert fail_on_never_audit.returncode == 0
    report = fail_on_never_audit.report()
    assert finding(report, "FW001")["severity"] == "error"
    assert finding(report, "FW002")["severity"] == "error"
    assert report["frameworks"]["torch"]["probe"]["status"] == "error"
    assert report["readiness"]["status"] == "not-ready"
    assert not {"torch", "tensorflow"} & {c["framework"] for c in report["recommendation"]["choices"]}


def test_exit_without_a_result_is_a_crash(fail_on_never_audit):
    tf = fail_on_never_audit.report()["frameworks"]["tensorflow"]
    assert tf["probe"]["status"] == "crashed"
    assert tf["probe"]["reason"] == "exited with status 3 and no result"
    assert tf["distribution_version"] == metadata.version(tf["distribution"])


# --- a probe's helpers, and the auditor's own interruption, never leave processes behind ------


def test_helper_left_running_does_not_turn_an_error_into_a_timeout(tmp_path):
    source = """
        import os, subprocess, sys
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # fake helper"])
        open(os.environ["FAKE_PID_FILE"], "w").write(str(helper.pid))
        raise ImportError("fake torch that left a helper running")
    """
    fakes = make_fakes(tmp_path / "fakes", torch=source, tensorflow=FAKE_FAST_FAILURE)
    pid_file = tmp_path / "pids"
    try:
        audit = run_audit(tmp_path, fakes, "--format", "json", "--timeout", "3", timeout=60,
                          extra_env={"FAKE_PID_FILE": str(pid_file)})
        run = audit.report()["frameworks"]["torch"]["probe"]
        assert run["status"] == "error", run
        assert run["reason"] == "ImportError: fake torch that left a helper running"
    finally:
        kill_leftovers(read_pids(pid_file))


def test_helper_in_its_own_session_does_not_hold_the_audit_past_the_deadline(tmp_path):
    source = """
        import os, subprocess, sys, time
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # fake helper"],
                                  start_new_session=True)
        open(os.environ["FAKE_PID_FILE"], "w").write(str(helper.pid))
        time.sleep(600)
    """
    fakes = make_fakes(tmp_path / "fakes", torch=source, tensorflow=FAKE_FAST_FAILURE)
    pid_file = tmp_path / "pids"
    try:
        audit = run_audit(tmp_path, fakes, "--format", "json", "--timeout", "1", timeout=10,
                          extra_env={"FAKE_PID_FILE": str(pid_file)})
        assert audit.report()["frameworks"]["torch"]["probe"]["status"] == "timeout"
    finally:
        kill_leftovers(read_pids(pid_file))


def test_terminating_the_auditor_takes_its_probe_children_with_it(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", torch=FAKE_HANG, tensorflow=FAKE_FAST_FAILURE)
    pid_file = tmp_path / "pids"
    process = start_audit(tmp_path, fakes, "--format", "json", "--timeout", "60",
                          extra_env={"FAKE_PID_FILE": str(pid_file)})
    pids = read_pids(pid_file, wait_s=30)
    try:
        assert len(pids) == 2, "the fake torch never ran"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 128 + signal.SIGTERM
        assert stderr.strip() == "auditor: error: interrupted by SIGTERM"
        assert all(process_gone(pid, wait_s=3) for pid in pids)
    finally:
        _kill_group(process)
        process.communicate()
        kill_leftovers(pids)


def test_ctrl_c_interrupts_a_hung_probe_promptly(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", torch=FAKE_HANG, tensorflow=FAKE_FAST_FAILURE)
    pid_file = tmp_path / "pids"
    process = start_audit(tmp_path, fakes, "--format", "json", "--timeout", "30",
                          extra_env={"FAKE_PID_FILE": str(pid_file)})
    pids = read_pids(pid_file, wait_s=30)
    try:
        assert len(pids) == 2, "the fake torch never ran"
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=6)
        except subprocess.TimeoutExpired:
            pytest.fail("the auditor was still running 6 s after SIGINT")
        assert process.returncode == 130
        assert stderr.strip() == "auditor: error: interrupted by SIGINT"
        assert all(process_gone(pid, wait_s=3) for pid in pids)
    finally:
        _kill_group(process)
        process.communicate()
        kill_leftovers(pids)
