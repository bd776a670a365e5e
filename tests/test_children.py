"""Probe children: what they send, and what they leave behind.

Every test uses real processes. A fake probe module, put on the child's path through
PYTHONPATH, is what the child imports and runs; to send a result the protocol does not
allow, a fake replaces json.dump, which child_main calls to write the result, so that its
bytes go down the real result channel instead. The audit runs as a user runs it
(``python -m auditor audit``), tagged (tests/leftovers.py), and is signalled or killed;
/proc then tells whether anything it started survived it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from auditor.probes.child import RESULT_ITEMS_LIMIT, RESULT_LIMIT, RunningChild
from leftovers import TAG, dead_pid, kill_tagged, new_tag, scratch_left, survivors

FAST_FAILURE = 'raise ImportError("fake: not the framework under test")\n'


def write_modules(directory: Path, **modules: str) -> Path:
    """directory/<name>.py for each name=source, or directory/<name>/__init__.py for a
    package name given with a trailing underscore stripped (torch_=... shadows torch)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        if name.endswith("_"):
            package = directory / name[:-1]
            package.mkdir()
            (package / "__init__.py").write_text(textwrap.dedent(source))
        else:
            (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


def raw_result(payload: bytes) -> str:
    """A probe module whose child sends `payload`, byte for byte, as its result."""
    return f"""
        import json, os

        def _send(result, out, **options):
            out.flush()
            view = memoryview({payload!r})
            while view:
                view = view[os.write(out.fileno(), view):]

        json.dump = _send

        def collect():
            return {{}}
    """


def run_fake(tmp_path: Path, source: str, deadline_s: float = 30.0, **env: str):
    fakes = write_modules(tmp_path / "fakes", fake_probe=source)
    return RunningChild("fake_probe", deadline_s, {**os.environ, "PYTHONPATH": str(fakes), **env}).wait()


# --- the result channel is a protocol ------------------------------------------------------


@pytest.mark.parametrize("payload, reason", [
    (b'{"status": "great", "facts": {}}', "unknown status 'great'"),
    (b'{"status": "timeout", "reason": "I gave up"}', "unknown status 'timeout'"),  # the parent's word, not the child's
    (b'{"facts": {}}', "unknown status None"),
    (b'[{"status": "ok", "facts": {}}]', "the result is a JSON array, not an object"),
    (b'"ok"', "the result is a JSON string, not an object"),
    (b'{"status": "ok"}', "a result with status 'ok' needs facts"),
    (b'{"status": "error"}', "a result with status 'error' needs reason"),
    (b'{"status": "ok", "facts": {}, "extra": 1}', "unexpected 'extra'"),
    (b'{"status": "ok", "facts": [1, 2]}', "the facts are a JSON array, not an object"),
    (b'{"status": "absent", "reason": 7}', "the reason is a JSON number, not a string"),
    (b'{"status": "ok", "facts": {}}{"status": "ok", "facts": {}}', "the result is not JSON (Extra data: line 1 column 30 (char 29))"),
    (b"\x89PNG\r\n\x1a\n\xff\xfe garbage", "the result is not JSON ("),
    (b"[" * 100_000, "the result is nested too deeply to be facts"),
])
def test_a_result_outside_the_protocol_is_a_probe_error(tmp_path, payload, reason):
    outcome = run_fake(tmp_path, raw_result(payload))

    assert outcome.status == "error"
    assert outcome.payload is None
    assert outcome.reason.startswith(f"the probe broke the result protocol: {reason}"), outcome.reason
    assert "\n" not in outcome.reason and len(outcome.reason) < 400


def test_a_result_within_the_protocol_is_taken_as_sent(tmp_path):
    outcome = run_fake(tmp_path, raw_result(b'{"status": "absent", "reason": "no such\\n\\tdevice  here"}'))

    assert (outcome.status, outcome.payload, outcome.reason) == ("absent", None, "no such device here")  # one line


def test_a_real_time_signal_is_a_crash_naming_it(tmp_path):
    source = """
        import os, signal, sys, time

        def collect():
            sys.stderr.write("fake: raising SIGRTMIN+3\\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGRTMIN + 3)
            time.sleep(10)
    """
    outcome = run_fake(tmp_path, source)

    assert outcome.status == "crashed"
    assert outcome.reason == "killed by SIGRTMIN+3: fake: raising SIGRTMIN+3"
    assert outcome.duration_s < 5


# --- bounded output ------------------------------------------------------------------------

# A driver process stands in for the auditor, so that its peak memory is the parent's own
# (the test process's would include pytest and everything it imported). The peak is VmHWM,
# which belongs to the driver's own address space: Linux carries ru_maxrss across execve, so
# after subprocess's vfork it would report the pytest process's peak instead.
DRIVER = """
    import json, os, sys, time
    from auditor.probes.child import RunningChild

    outcomes = {}
    for module in sys.argv[1:]:
        started = time.monotonic()
        outcome = RunningChild(module, 60, dict(os.environ)).wait()
        outcomes[module] = [outcome.status, outcome.reason, round(time.monotonic() - started, 2)]
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"outcomes": outcomes, "max_rss_kib": peak_kib}))
"""
FLOOD = """
    import json, os

    MIB = b"x" * (1 << 20)

    def _flood(fd):
        for _ in range(200):
            view = memoryview(MIB)
            while view:
                view = view[os.write(fd, view):]

    def _send(result, out, **options):
        _flood(2)  # stderr: 200 MiB of chatter
        out.flush()
        _flood(out.fileno())  # then 200 MiB of "result"

    json.dump = _send

    def collect():
        return {}
"""
CHATTER_THEN_RESULT = """
    import os, sys

    def collect():
        line = b"W0000 a framework warning, again and again\\n"
        chunk = line * ((1 << 20) // len(line))
        for _ in range(200):
            view = memoryview(chunk)
            while view:
                view = view[os.write(2, view):]
        sys.stderr.write("the last line\\n")
        return {"answer": 42}
"""


# Valid JSON, within the size limit, that would parse into over 80 MiB of empty objects.
BOMB = raw_result(b'{"status": "ok", "facts": {"x": [' + b"{}," * ((RESULT_LIMIT - 100) // 3) + b'{}]}}')


def test_a_child_flooding_its_channel_and_stderr_costs_the_parent_no_memory(tmp_path):
    fakes = write_modules(tmp_path / "fakes", flood=FLOOD, chatter=CHATTER_THEN_RESULT, bomb=BOMB)
    env = {**os.environ, "PYTHONPATH": str(fakes)}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(DRIVER), "flood", "chatter", "bomb"], env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    status, reason, seconds = report["outcomes"]["flood"]
    assert (status, reason) == ("error", f"the probe wrote more than {RESULT_LIMIT >> 20} MiB as its result; "
                                         "killed, and the result ignored")
    assert seconds < 30
    status, reason, seconds = report["outcomes"]["chatter"]
    assert (status, reason) == ("ok", None)  # 200 MiB of stderr is chatter, of which the end is kept
    status, reason, seconds = report["outcomes"]["bomb"]
    assert (status, reason) == ("error", f"the probe broke the result protocol: the result holds more than "
                                         f"{RESULT_ITEMS_LIMIT:,} items; not parsed")
    assert report["max_rss_kib"] < 100 * 1024, report  # 400 MiB went through it


# --- what children leave -------------------------------------------------------------------

SETSID_GRANDCHILD = """
    import os, subprocess, sys

    def collect():
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # fake daemon"],
                                      start_new_session=True)
        with open(os.environ["FAKE_PID_FILE"], "w") as out:
            out.write(str(grandchild.pid))
        return {}
"""
ALIVE_AFTER_WAIT = """
    import os, sys
    from auditor.probes.child import RunningChild

    outcome = RunningChild("fake_probe", 30, dict(os.environ)).wait()
    grandchild = int(open(os.environ["FAKE_PID_FILE"]).read())
    os.kill(grandchild, 0)  # still running: a session of its own is out of reach of the group kill
    print(outcome.status, grandchild)
"""


def test_a_setsid_grandchild_does_not_outlive_the_process_that_ran_the_probe(tmp_path):
    tag, tmpdir = new_tag(), tmp_path / "tmp"
    tmpdir.mkdir()
    fakes = write_modules(tmp_path / "fakes", fake_probe=SETSID_GRANDCHILD)
    env = {**os.environ, "PYTHONPATH": str(fakes), "FAKE_PID_FILE": str(tmp_path / "pid"), TAG: tag,
           "TMPDIR": str(tmpdir)}
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(ALIVE_AFTER_WAIT)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[0] == "ok"
        assert survivors(tag) == []
        assert scratch_left(tmpdir) == []
    finally:
        kill_tagged(tag)


# --- the real CLI, signalled and killed ---------------------------------------------------

FAKE_TORCH_HANGS = """
    import os, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # fake daemon"],
                                  start_new_session=True)
    with open(os.environ["FAKE_PID_FILE"], "w") as out:
        out.write(f"{os.getpid()} {grandchild.pid}")
    time.sleep(300)
"""
FAKE_TORCH_LEAVES_A_DAEMON = """
    import os, subprocess, sys
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # fake daemon"],
                                  start_new_session=True)
    with open(os.environ["FAKE_PID_FILE"], "w") as out:
        out.write(f"{os.getpid()} {grandchild.pid}")
    raise ImportError("fake torch that left a daemon running")
"""


class Audit:
    """One `auditor audit` in its own session, tagged, with its own TMPDIR and fake modules."""

    def __init__(self, tmp_path: Path, *args: str, torch: str = FAST_FAILURE, extra_env: dict | None = None):
        self.tag, self.tmpdir, self.pid_file = new_tag(), tmp_path / "tmp", tmp_path / "pids"
        self.tmpdir.mkdir()
        fakes = write_modules(tmp_path / "fakes", torch_=torch, tensorflow_=FAST_FAILURE, jax_=FAST_FAILURE)
        env = {k: v for k, v in os.environ.items() if k not in ("AUDITOR_DEBUG", "PYTHONPATH")}
        env.update({"PYTHONPATH": str(fakes), "FAKE_PID_FILE": str(self.pid_file), TAG: self.tag,
                    "TMPDIR": str(self.tmpdir), **(extra_env or {})})
        self.process = subprocess.Popen([sys.executable, "-m", "auditor", "audit", "--format", "json", *args],
                                        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)

    def pids(self, wait_s: float = 60.0) -> list[int]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            text = self.pid_file.read_text() if self.pid_file.exists() else ""
            if len(text.split()) == 2:
                return [int(pid) for pid in text.split()]
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"the fake never ran: {self.process.poll()=}")

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the audit was still running {timeout} s later")
        return self.process.returncode, stdout, stderr

    def clean_up(self) -> None:
        kill_tagged(self.tag)
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def _signal(audit: Audit, signum: int) -> None:
    if signum in (signal.SIGINT, signal.SIGHUP):  # as a terminal sends them: to the foreground group
        os.killpg(audit.process.pid, signum)
    else:
        audit.process.send_signal(signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_nothing_outlives_an_audit_ended_while_children_run(tmp_path, signum):
    audit = Audit(tmp_path, "--timeout", "120", torch=FAKE_TORCH_HANGS)
    try:
        assert len(audit.pids()) == 2  # the fake torch and its daemon run
        _signal(audit, signum)
        code, _, stderr = audit.finish()
        if signum == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 128 + signum
            assert stderr.strip() == f"auditor: error: interrupted by {signal.Signals(signum).name}"
        assert survivors(audit.tag) == []
        assert scratch_left(audit.tmpdir) == []
    finally:
        audit.clean_up()


@pytest.mark.parametrize("delay_s", [0.05, 0.3, 0.8, 1.5])
def test_nothing_outlives_an_audit_killed_at_any_moment(tmp_path, delay_s):
    audit = Audit(tmp_path, "--timeout", "120", torch=FAKE_TORCH_HANGS)
    try:
        time.sleep(delay_s)
        audit.process.kill()
        assert audit.finish()[0] == -signal.SIGKILL
        assert survivors(audit.tag) == []
        assert scratch_left(audit.tmpdir) == []
    finally:
        audit.clean_up()


def test_a_daemon_a_probe_left_does_not_outlive_a_finished_audit(tmp_path):
    audit = Audit(tmp_path, "--timeout", "60", torch=FAKE_TORCH_LEAVES_A_DAEMON)
    try:
        code, stdout, stderr = audit.finish(timeout=120)
        assert code == 1, stderr
        torch = json.loads(stdout)["frameworks"]["torch"]["probe"]
        assert (torch["status"], torch["reason"]) == ("error", "ImportError: fake torch that left a daemon running")
        assert survivors(audit.tag) == []
        assert scratch_left(audit.tmpdir) == []
    finally:
        audit.clean_up()


def test_a_result_outside_the_protocol_is_a_framework_error_not_an_internal_one(tmp_path):
    audit = Audit(tmp_path, "--timeout", "60", torch=raw_result(b"[1, 2, 3]"))  # whatever torch_child sends
    try:
        code, stdout, stderr = audit.finish(timeout=120)
        assert code == 1, stderr  # findings, not exit 3
        report = json.loads(stdout)
        torch = report["frameworks"]["torch"]["probe"]
        assert (torch["status"], torch["reason"]) == (
            "error", "the probe broke the result protocol: the result is a JSON array, not an object")
        assert "FW001" in [f["code"] for f in report["findings"]]
        assert [fw["status"] for fw in report["readiness"]["frameworks"] if fw["framework"] == "torch"] != ["ready"]
    finally:
        audit.clean_up()


def test_stale_scratch_of_dead_audits_is_removed_by_the_next_run(tmp_path):
    audit_tmp = tmp_path / "tmp"
    stale = audit_tmp / f"auditor-{dead_pid()}-leftover"
    live = audit_tmp / f"auditor-{os.getpid()}-in-use"  # this test process is alive
    for directory in (stale, live):
        (directory / "keras").mkdir(parents=True)
        (directory / "keras" / "keras.json").write_text("{}")
    tag = new_tag()
    env = {**os.environ, TAG: tag, "TMPDIR": str(audit_tmp)}
    try:
        result = subprocess.run([sys.executable, "-m", "auditor", "audit", "--quick", "--format", "json"],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode in (0, 1), result.stderr
        assert scratch_left(audit_tmp, wait_s=10) == [live.name]
        assert (live / "keras" / "keras.json").exists()
    finally:
        kill_tagged(tag)


def test_a_child_without_home_or_passwd_entry_gets_a_private_keras_home(monkeypatch, tmp_path):
    # Path.home() raises when HOME is unset and the uid has no passwd entry (a container's
    # arbitrary uid); the child must still start, with Keras writing into its scratch.
    import pwd

    from auditor.probes.child import _private_files

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    env = _private_files({}, str(tmp_path))
    assert env["KERAS_HOME"] == str(tmp_path / "keras")
    assert env["TMPDIR"] == str(tmp_path)
