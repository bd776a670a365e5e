"""Nothing the audit starts outlives it, however the auditor ends.

Killing a probe's process group at its end covers what stays in the group; it cannot cover
the auditor being SIGKILLed, nor a descendant that called setsid(). So, on Linux, the first
subprocess of an audit starts a guardian first (guardian_main.py): a tiny Python process in a
session of its own, so that a terminal's Ctrl-C or hangup, sent to the auditor's process
group, does not reach it. It holds the read end of a pipe whose write end only the auditor
holds (close-on-exec: no subprocess inherits it). Every process the audit starts carries
AUDITOR_RUN=<this run's id> in its environment, and descendants inherit it, setsid or not.
When the pipe reaches end-of-file (the auditor exited, or was killed), the guardian kills every
process whose /proc/PID/environ carries the tag (and any descendant of one that dropped it),
removes the run's scratch directories, and exits.

Scratch directories are named auditor-<pid>-*, after the auditor that made them: the
guardian removes those of dead auditors when it starts, so even a guardian that was itself
killed leaves nothing for long. The auditor removes its own as soon as a probe ends, and at
exit. Elsewhere (no /proc), there is no guardian: process groups, as on Linux, do the rest.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional

TAG = "AUDITOR_RUN"
SCRATCH_PREFIX = "auditor-"
_WATCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guardian_main.py")


@dataclass(frozen=True)
class _Run:
    owner: int  # the process this run belongs to (a fork has to start its own)
    run_id: Optional[str]  # None: unguarded (not Linux, or the guardian could not start)
    guardian: Optional[subprocess.Popen] = None  # kept so it is not reaped as garbage


_run: Optional[_Run] = None
_scratch: set[str] = set()


def run_environment() -> dict[str, str]:
    """The tag for the environment of a process the audit starts; the first call starts the
    guardian, so that nothing is ever started unguarded."""
    global _run
    if _run is None or _run.owner != os.getpid():
        _run = _start_guardian()
    return {TAG: _run.run_id} if _run.run_id else {}


def join_parent_run() -> None:
    """In a probe child: its parent's guardian already watches this run, and what the child
    starts inherits the tag through the environment; it needs no guardian of its own."""
    global _run
    _run = _Run(os.getpid(), os.environ.get(TAG))


def make_scratch() -> str:
    """A new private directory for one probe child, removed when it ends (remove_scratch)."""
    path = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
    _scratch.add(path)
    return path


def remove_scratch(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _scratch.discard(path)


@atexit.register
def _remove_all_scratch() -> None:
    # For the paths that skip a probe's own clean-up (an interruption while it starts); the
    # guardian removes them again after killing whatever might still write there.
    for path in list(_scratch):
        remove_scratch(path)


def _start_guardian() -> _Run:
    if not sys.platform.startswith("linux"):
        return _Run(os.getpid(), None)
    run_id = f"{os.getpid()}-{os.urandom(6).hex()}"
    read_end, write_end = os.pipe()  # both close-on-exec: only the guardian is given the read end
    try:
        guardian = subprocess.Popen(
            [sys.executable, "-S", "-I", _WATCHER, str(read_end), run_id, tempfile.gettempdir(), str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(read_end,), start_new_session=True, cwd="/")
    except OSError:
        os.close(write_end)  # no guardian: process groups and parent-death signals still apply
        return _Run(os.getpid(), None)
    finally:
        os.close(read_end)
    # The write end stays open, unused, for the rest of this process's life: its closing, by
    # the kernel, whatever ends the process, is the signal.
    return _Run(os.getpid(), run_id, guardian)
