"""Every subprocess the audit starts is started, read and ended here, one way.

A probe child or a helper (nvcc, ldconfig, nvidia-smi, py-cpuinfo's CPUID runner) runs in a
session of its own, so that one killpg ends it and everything it started in its group; it
carries the run's tag (guardian.py), so that it cannot outlive the auditor even when the
auditor is SIGKILLed. A probe child also arms a parent-death signal itself, first thing
(die_with_parent): arming it here, before exec, would take a fork where Python now uses the
much cheaper vfork, about 6 ms more for every process started.

Its output is read until the process exits, not until its pipes close: a background job it
left behind (``sleep 100 &`` in a shell script) may hold them open for ever, and waiting for
that would turn a finished helper into a timeout. What it wrote before exiting is already in
the pipe and is drained at once. Output is never kept past a cap, so a helper that floods its
pipe costs the audit neither time nor memory.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from auditor.probes import guardian

STDERR_KEPT = 1 << 16  # the end of stderr says why a process died; the rest is chatter
HELPER_OUTPUT_LIMIT = 4 << 20  # nvcc --version and friends print a few KiB
_CHUNK = 1 << 16
_POLL_S = 0.05  # how often to look for an exit while its pipes stay open
_DRAIN_GRACE_S = 0.5  # the most time spent reading what is still arriving after the exit
_REAP_S = 1.0  # how long to wait for a killed process to be gone (one stuck in the kernel may not go)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class HelperError(Exception):
    """A helper command did not answer in time, or wrote more than it may; one line."""


@dataclass
class Finished:
    """How a process ended, and what it wrote."""

    returncode: Optional[int]  # None: it was still running at the deadline, and was killed
    stdout: bytearray  # at most the limit given to finish(), plus one chunk
    stderr: bytearray  # its last STDERR_KEPT bytes
    overflowed: bool  # it wrote more than the limit to stdout; it was killed there


def start(args: Sequence[str], env: Optional[Mapping[str, str]] = None, pass_fds: Sequence[int] = ()) -> subprocess.Popen:
    """Start a process the audit owns: in a session of its own, tagged with the run.

    ``env`` None means this process's environment; ``pass_fds`` are descriptors it keeps, under
    the same numbers (a framework child's turn pipes, turns.py). Raises OSError when it cannot
    be started.
    """
    environment = {**(os.environ if env is None else env), **guardian.run_environment()}
    return subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=environment, start_new_session=True, pass_fds=tuple(pass_fds))


def finish(process: subprocess.Popen, deadline: float, stdout_limit: int) -> Finished:
    """Read the process's output until it exits, overflows stdout, or the deadline (a
    time.monotonic() value) passes; then kill its process group, whatever is left in it."""
    stdout, stderr = bytearray(), bytearray()
    overflowed, exited_at = False, None
    try:
        with selectors.DefaultSelector() as selector:
            for stream in (process.stdout, process.stderr):
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map() and not overflowed:
                now = time.monotonic()
                if exited_at is None and process.poll() is not None:
                    exited_at = now
                if exited_at is None and now >= deadline:
                    break
                wait = 0.0 if exited_at is not None else min(_POLL_S, deadline - now)
                ready = selector.select(timeout=wait)
                if exited_at is not None and (not ready or now - exited_at >= _DRAIN_GRACE_S):
                    break  # drained: the rest, if any, comes from what it left running
                for key, _ in ready:
                    chunk = os.read(key.fd, _CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.fileobj is process.stdout:
                        stdout += chunk
                        overflowed = len(stdout) > stdout_limit
                    else:
                        stderr += chunk
                        del stderr[:-STDERR_KEPT]
        if not overflowed and process.poll() is None:  # it closed its pipes but runs on
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        running = process.poll() is None
    finally:
        end(process)
    return Finished(None if running and not overflowed else process.returncode, stdout, stderr, overflowed)


def run(args: Sequence[str], deadline_s: float, stdout_limit: int = HELPER_OUTPUT_LIMIT,
        env: Optional[Mapping[str, str]] = None) -> Finished:
    """Run a helper command to its end or its deadline. Raises OSError when it cannot start."""
    deadline = time.monotonic() + deadline_s
    return finish(start(args, env), deadline, stdout_limit)


def output_of(args: Sequence[str], deadline_s: float, stdout_limit: int = HELPER_OUTPUT_LIMIT,
              env: Optional[Mapping[str, str]] = None, name: Optional[str] = None) -> str:
    """A helper's stdout as text, whatever its exit status; HelperError, naming it (by default
    its executable's name), when it did not answer within the deadline or wrote more than the
    limit; OSError when it cannot start."""
    name = name or os.path.basename(args[0])
    finished = run(args, deadline_s, stdout_limit, env)
    if finished.overflowed:
        raise HelperError(f"{name} wrote more than {stdout_limit >> 20} MiB; killed")
    if finished.returncode is None:
        raise HelperError(f"{name} did not answer within {deadline_s:g} s; killed")
    return finished.stdout.decode(errors="replace")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and every process in its group (its session, since start() made one)."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is None:  # no process groups (Windows): the process alone
            process.kill()
        else:
            killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def end(process: subprocess.Popen) -> None:
    """Kill its group, reap it, close its pipes; never blocks on a process stuck in the kernel."""
    kill_group(process)
    try:
        process.wait(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        pass  # unkillable until the kernel lets go; Popen reaps it later
    for stream in (process.stdout, process.stderr):
        if stream and not stream.closed:
            stream.close()


def die_with_parent(parent: int) -> None:
    """On Linux, have the kernel SIGKILL this process when `parent`, which started it, dies;
    at once if it died already. Elsewhere, nothing: the process group is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # a libc without prctl: the guardian still ends it
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)
