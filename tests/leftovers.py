"""What an audit leaves behind, seen from outside: processes and scratch directories.

A test runs the auditor with ``AUDITOR_TEST_TAG=<unique>`` in its environment. Every
process it starts inherits the variable, in a new session or not, so /proc tells which
processes are the test's, whoever their parent is now. Nothing is asked of the auditor:
the test's own tag is not the auditor's AUDITOR_RUN.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

TAG = "AUDITOR_TEST_TAG"
SCRATCH_PREFIX = "auditor-"


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_processes(tag: str) -> list[int]:
    """Live processes (not zombies) whose environment carries TAG=tag, this one excluded."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X") and needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def survivors(tag: str, wait_s: float = 10.0) -> list[str]:
    """The tagged processes still alive after wait_s, described; [] as soon as there are none.
    The wait is for the guardian, which cleans up just after the auditor has gone."""
    deadline = time.monotonic() + wait_s
    while True:
        pids = tagged_processes(tag)
        if not pids or time.monotonic() > deadline:
            return [_describe(pid) for pid in pids]
        time.sleep(0.05)


def scratch_left(tmpdir: Path, wait_s: float = 10.0) -> list[str]:
    """auditor-* entries still in tmpdir after wait_s; [] as soon as there are none."""
    deadline = time.monotonic() + wait_s
    while True:
        names = sorted(name for name in os.listdir(tmpdir) if name.startswith(SCRATCH_PREFIX))
        if not names or time.monotonic() > deadline:
            return names
        time.sleep(0.05)


def kill_tagged(tag: str) -> None:
    """Clean up after a failing test: SIGKILL what carries this test's tag."""
    for pid in tagged_processes(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _describe(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return str(pid)
    return f"{pid}: {command.decode(errors='replace').strip()}"
