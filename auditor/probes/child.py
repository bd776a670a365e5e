"""Run a probe module in a child Python process with a deadline.

A framework import can raise, hang, print noise, or kill its process (a segfault in a
CUDA library, SIGILL on a CPU without AVX). In a child, each of these costs that probe
only: the parent sees a status, never the crash.

Protocol: the child keeps a private copy of its stdout for the one JSON result it
writes, and points fd 1 at stderr so anything the framework prints cannot corrupt that
result. The parent captures stderr to quote its last line when the child dies.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import auditor

# -c puts the working directory first on sys.path; drop it so a ./torch folder in the
# user's project cannot stand in for the real framework. The auditor's own location
# goes last so it is found even when run from a source tree, without shadowing anything.
_BOOTSTRAP = (
    "import sys; del sys.path[0]; sys.path.append({parent!r}); "
    "from auditor.probes.child import child_main; child_main({module!r})"
)
_REASON_LIMIT = 300
_POLL_S = 0.05  # how often to look for an exit while pipes stay open
_DRAIN_GRACE_S = 0.5  # how long to keep reading pipes a helper holds open after the exit
_STDERR_KEPT = 1 << 16


@dataclass
class ChildOutcome:
    status: str  # ok, absent, error, timeout, crashed
    payload: Optional[dict[str, Any]]
    reason: Optional[str]
    duration_s: float


class RunningChild:
    def __init__(self, module: str, deadline_s: float, env: Mapping[str, str]):
        self.module = module
        self.deadline_s = deadline_s
        self.started = time.monotonic()
        self.scratch = tempfile.mkdtemp(prefix="auditor-probe-")
        code = _BOOTSTRAP.format(parent=str(Path(auditor.__file__).resolve().parent.parent), module=module)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_private_files(dict(env), self.scratch),
            start_new_session=True,  # its own process group, so a kill takes its helpers too
        )

    def wait(self) -> ChildOutcome:
        """Read the child's output until it exits or its deadline passes, then judge it.

        The process's exit, not the end of its pipes, ends the wait: a helper process the
        framework started may hold the pipes open long after the probe finished (or after
        it was killed), so output is drained for at most _DRAIN_GRACE_S past the exit.
        """
        deadline = self.started + self.deadline_s
        stdout, stderr = bytearray(), bytearray()
        buffers = {self.process.stdout: stdout, self.process.stderr: stderr}
        exited_at, timed_out = None, False
        with selectors.DefaultSelector() as selector:
            for stream in buffers:
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                now = time.monotonic()
                if exited_at is None and self.process.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at >= _DRAIN_GRACE_S:
                    break
                if exited_at is None and now >= deadline:
                    timed_out = True
                    break
                for key, _ in selector.select(timeout=min(_POLL_S, max(0.0, deadline - now))):
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        buffers[key.fileobj].extend(chunk)
                    else:
                        selector.unregister(key.fileobj)
                del stderr[:-_STDERR_KEPT]  # framework chatter can be large; the end says why it died
        if not timed_out:
            try:
                self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
        self.kill()  # also ends helpers left in the child's process group
        self.process.wait()
        for stream in buffers:
            stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if timed_out:
            return self._outcome("timeout", None, f"no answer within {self.deadline_s:g} s; killed")
        returncode = self.process.returncode
        last_line = _last_line(bytes(stderr))
        if returncode < 0:
            name = signal.Signals(-returncode).name
            return self._outcome("crashed", None, _join(f"killed by {name}", last_line))
        try:
            result = json.loads(stdout)
        except ValueError:
            return self._outcome("crashed", None, _join(f"exited with status {returncode} and no result", last_line))
        return self._outcome(result["status"], result.get("facts"), result.get("reason"))

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    def _outcome(self, status: str, payload: Optional[dict], reason: Optional[str]) -> ChildOutcome:
        return ChildOutcome(status, payload, reason, round(time.monotonic() - self.started, 3))


def _private_files(env: dict[str, str], scratch: str) -> dict[str, str]:
    """Send the files a framework writes on its own into the child's scratch directory, which
    the parent removes once the child has ended, however it ended.

    Libraries write temporaries and leave them to interpreter-exit hooks the child skips
    (coremltools' model packages, TensorFlow's autograph sources), or write fixed files under
    $TMPDIR (onnxruntime's .ses, torch's torchinductor cache); Python's tempfile and native
    code both follow TMPDIR. Importing TensorFlow creates ~/.keras/keras.json when it is
    missing, so Keras gets a home of its own then; a user's existing keras.json is kept, and
    read, as in their own programs.
    """
    env["TMPDIR"] = scratch
    keras_config = Path(env.get("KERAS_HOME") or Path(env.get("HOME") or Path.home()) / ".keras") / "keras.json"
    if not keras_config.exists():
        env["KERAS_HOME"] = os.path.join(scratch, "keras")
    return env


def _last_line(stderr: bytes) -> Optional[str]:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:_REASON_LIMIT] if lines else None


def _join(reason: str, detail: Optional[str]) -> str:
    return f"{reason}: {detail}" if detail else reason


def describe_exception(exc: BaseException) -> str:
    """One line: native libraries often spread one error over several ("Error code:\n\t8 | ...")."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:_REASON_LIMIT]


def child_main(module: str) -> None:
    """Entry point inside the child: run ``module.collect()`` and write the result."""
    import importlib

    from auditor.probes.base import ProbeAbsent

    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        facts = importlib.import_module(module).collect()
        result = {"status": "ok", "facts": facts}
    except ProbeAbsent as absent:
        result = {"status": "absent", "reason": str(absent)}
    except BaseException as exc:  # the child exists to turn any failure into a status
        result = {"status": "error", "reason": describe_exception(exc)}
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out, default=str)
    # Skip interpreter teardown: some framework builds hang or crash in their atexit hooks.
    sys.stderr.flush()
    os._exit(0)
