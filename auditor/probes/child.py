"""Run a probe module in a child Python process with a deadline.

A framework import can raise, hang, print noise, or kill its process (a segfault in a
CUDA library, SIGILL on a CPU without AVX). In a child, each of these costs that probe
only: the parent sees a status, never the crash.

Protocol: the child keeps a private copy of its stdout for the one JSON result it
writes, and points fd 1 at stderr so anything the framework prints cannot corrupt that
result. The parent captures stderr to quote its last line when the child dies.

The result is a protocol, checked as such: one JSON object, {"status": "ok", "facts":
{...}} or {"status": "absent" | "error", "reason": "..."}, within RESULT_LIMIT bytes and
RESULT_ITEMS_LIMIT items.
Anything else is the probe's error, with a one-line reason, never a crash of the audit.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import auditor
from auditor.facts import reject_non_finite
from auditor.probes import guardian, processes

# -c puts the working directory first on sys.path; drop it so a ./torch folder in the
# user's project cannot stand in for the real framework. The auditor's package is loaded from
# its own directory by name, never through sys.path: under another interpreter (--python) the
# audited environment must see nothing of the auditor's environment, whose packages may be
# built for another Python, and a copy of the auditor installed in the audited environment
# cannot stand in for this one. Under another interpreter the child writes no bytecode into the
# auditor's directory either: the audit writes only where it is asked to.
_BOOTSTRAP = (
    "import sys; del sys.path[0]; sys.dont_write_bytecode = sys.dont_write_bytecode or {foreign}\n"
    "import importlib.util\n"
    "spec = importlib.util.spec_from_file_location('auditor', {init!r}, submodule_search_locations=[{package!r}])\n"
    "sys.modules['auditor'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(sys.modules['auditor'])\n"
    "from auditor.probes.child_entry import child_main; child_main({probe!r}, {auditor})"
)
_PACKAGE = Path(auditor.__file__).resolve().parent
_REASON_LIMIT = 300
# Results are a few KiB (a framework's facts) to a few hundred (NVML's, at MAX_GPUS GPUs). The
# parent reads and parses all of a result, so both limits keep it small whatever a child
# writes: parsed, a JSON value costs up to 20 times its text ("[{},{},...]"), but never more
# than about 70 bytes per item, and every item but a container's first follows a comma.
RESULT_LIMIT = 4 << 20
RESULT_ITEMS_LIMIT = 250_000
# What each status a child may send must carry (timeout, crashed and skipped are the
# parent's to decide).
_RESULT_KEYS = {"ok": {"status", "facts"}, "absent": {"status", "reason"}, "error": {"status", "reason"}}


class ProtocolError(ValueError):
    """The child's result is not what the protocol allows; the message says how, in one line."""


@dataclass
class ChildOutcome:
    status: str  # ok, absent, error, timeout, crashed
    payload: Optional[dict[str, Any]]
    reason: Optional[str]
    duration_s: float


class RunningChild:
    def __init__(self, module: str, deadline_s: float, env: Mapping[str, str], pass_fds: Sequence[int] = (),
                 python: str = sys.executable):
        """``python``: the interpreter to run it under; the auditor's own by default."""
        self.module = module
        self.deadline_s = deadline_s
        self.started = time.monotonic()
        self.scratch = guardian.make_scratch()
        code = _BOOTSTRAP.format(foreign=python != sys.executable, init=str(_PACKAGE / "__init__.py"),
                                 package=str(_PACKAGE), probe=module, auditor=os.getpid())
        try:
            self.process = processes.start([python, "-c", code], _private_files(dict(env), self.scratch),
                                           pass_fds)
        except BaseException:
            guardian.remove_scratch(self.scratch)
            raise

    def wait(self) -> ChildOutcome:
        """Read the child's output until it exits or its deadline passes, then judge it.

        The process's exit, not the end of its pipes, ends the wait: a helper process the
        framework started may hold the pipes open long after the probe finished (or after
        it was killed). Whatever it left running in its process group is killed with it.
        """
        try:
            finished = processes.finish(self.process, self.started + self.deadline_s, RESULT_LIMIT)
        finally:
            guardian.remove_scratch(self.scratch)
        return self._judge(finished)

    def kill(self) -> None:
        processes.kill_group(self.process)

    def abandon(self) -> None:
        """End it without waiting for an outcome (the audit is being interrupted)."""
        self.kill()
        guardian.remove_scratch(self.scratch)

    def _judge(self, finished: processes.Finished) -> ChildOutcome:
        if finished.returncode is None:
            return self._outcome("timeout", None, f"no answer within {self.deadline_s:g} s; killed")
        if finished.overflowed:
            return self._outcome("error", None, f"the probe wrote more than {RESULT_LIMIT >> 20} MiB as its result; "
                                                "killed, and the result ignored")
        returncode = finished.returncode
        last_line = _last_line(bytes(finished.stderr))
        if returncode < 0:
            return self._outcome("crashed", None, _join(f"killed by {signal_name(-returncode)}", last_line))
        if not finished.stdout.strip():
            return self._outcome("crashed", None, _join(f"exited with status {returncode} and no result", last_line))
        try:
            status, facts, reason = read_result(finished.stdout)
        except ProtocolError as broken:
            return self._outcome("error", None, f"the probe broke the result protocol: {broken}")
        return self._outcome(status, facts, reason)

    def _outcome(self, status: str, payload: Optional[dict], reason: Optional[str]) -> ChildOutcome:
        return ChildOutcome(status, payload, reason, round(time.monotonic() - self.started, 3))


def read_result(data: bytes | bytearray) -> tuple[str, Optional[dict[str, Any]], Optional[str]]:
    """(status, facts, reason) from a child's result; ProtocolError when it is not one."""
    items = data.count(b",") + data.count(b"[") + data.count(b"{")  # an upper bound, commas in strings too
    if items > RESULT_ITEMS_LIMIT:
        raise ProtocolError(f"the result holds more than {RESULT_ITEMS_LIMIT:,} items; not parsed")
    try:
        result = json.loads(data, parse_constant=reject_non_finite)
    except ValueError as exc:  # includes text that is not UTF-8
        raise ProtocolError(f"the result is not JSON ({_one_line(str(exc))})") from None
    except RecursionError:
        raise ProtocolError("the result is nested too deeply to be facts") from None
    if not isinstance(result, dict):
        raise ProtocolError(f"the result is a JSON {_json_type(result)}, not an object")
    status = result.get("status")
    if status not in _RESULT_KEYS:
        raise ProtocolError(f"unknown status {_one_line(repr(status))}")
    expected = _RESULT_KEYS[status]
    if result.keys() != expected:
        missing, extra = sorted(expected - result.keys()), sorted(result.keys() - expected)
        raise ProtocolError(_one_line("; ".join(filter(None, (
            f"a result with status {status!r} needs {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(map(repr, extra))}" if extra else "")))))
    if status == "ok":
        if not isinstance(result["facts"], dict):
            raise ProtocolError(f"the facts are a JSON {_json_type(result['facts'])}, not an object")
        return status, result["facts"], None
    if not isinstance(result["reason"], str):
        raise ProtocolError(f"the reason is a JSON {_json_type(result['reason'])}, not a string")
    return status, None, _one_line(result["reason"])


def signal_name(number: int) -> str:
    """SIGSEGV; SIGRTMIN+3 for the real-time signals, which signal.Signals does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        pass
    low, high = getattr(signal, "SIGRTMIN", None), getattr(signal, "SIGRTMAX", None)
    if low is not None and low <= number <= high:
        return f"SIGRTMIN+{number - low}"
    return f"signal {number}"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_REASON_LIMIT]


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
    keras_home = env.get("KERAS_HOME") or (os.path.join(home, ".keras") if (home := _home(env)) else None)
    if keras_home is None or not Path(keras_home, "keras.json").exists():
        env["KERAS_HOME"] = os.path.join(scratch, "keras")
    return env


def _home(env: Mapping[str, str]) -> Optional[str]:
    """HOME, else the passwd entry's; None when neither exists (a uid with no passwd entry)."""
    try:
        return env.get("HOME") or str(Path.home())
    except (RuntimeError, KeyError):
        return None


def _last_line(stderr: bytes) -> Optional[str]:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return _one_line(lines[-1]) if lines else None


def _join(reason: str, detail: Optional[str]) -> str:
    return f"{reason}: {detail}" if detail else reason
