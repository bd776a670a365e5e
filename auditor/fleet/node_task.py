"""What runs on each node of a Ray fleet audit: that node's own `auditor audit`, in a process of its
own, with a deadline.

Standard library only, and sent to the nodes by value (see ray_cluster.py): a node whose Python lacks
the auditor still runs this and answers why, instead of failing to load the task.
"""

import os
import signal
import socket
import subprocess
import sys
import time

# Past its deadline the node's audit gets SIGTERM, which kills its probe children; this long later, SIGKILL.
GRACE_S = 10.0
_STDERR_KEPT = 4000


def audit_this_node(arguments, deadline_s):
    """Run `python -m auditor audit --format json ARGUMENTS` here and return what it said:
    {"status": "ok"|"failed"|"timeout"|"no-auditor", "host", "python", "returncode", "report" (bytes),
    "stderr" (its end), "seconds"}."""
    command = [sys.executable, "-m", "auditor", "audit", "--format", "json", "--fail-on", "never"] + list(arguments)
    started = time.monotonic()
    answer = {"host": socket.gethostname(), "python": sys.executable, "returncode": None, "report": b"",
              "stderr": "", "status": "failed"}
    # Its own session, so that the deadline ends the audit's probe children with it; and it dies
    # with this worker, should Ray kill the worker first.
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=_die_with_parent)
    try:
        out, err = process.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        _stop(process)
        out, err = process.communicate()
        answer["status"] = "timeout"
    except BaseException:  # cancelled: the audit must not outlive the task
        _stop(process)
        raise
    answer.update(returncode=process.returncode, report=out,
                  stderr=err.decode("utf-8", "replace")[-_STDERR_KEPT:], seconds=round(time.monotonic() - started, 2))
    if answer["status"] != "timeout":
        if process.returncode in (0, 1) and out:
            answer["status"] = "ok"
        elif "No module named auditor" in answer["stderr"]:
            answer["status"] = "no-auditor"
    return answer


def _stop(process):
    for signum, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _die_with_parent():
    """Linux: SIGTERM the audit when the Ray worker that started it dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port():
    """A TCP port free on every interface of this node, for rank 0 of a proof across nodes to serve
    its rendezvous on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]
