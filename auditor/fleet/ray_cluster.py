"""`auditor fleet --ray ADDRESS`: one audit per alive node of a Ray cluster, each scheduled on its node.

Ray does the scheduling: each node's task is pinned to it with NodeAffinitySchedulingStrategy
(soft=False: it runs there or fails, docs.ray.io ... NodeAffinitySchedulingStrategy), asks for no CPU
(num_cpus=0, so it never queues behind a training job holding them) and is never retried
(max_retries=0: a crash is reported, not hidden). Ray hides GPUs from a task that asks for none by
setting CUDA_VISIBLE_DEVICES (ray-project/ray#1044, #22504); the audit must see the node as its jobs
do, so Ray is told not to touch the visibility variables (RAY_EXPERIMENTAL_NOSET_*).

Every node answers or becomes a row with its reason: a dead node (Ray's error), a hung one (no
answer by the deadline: its task is cancelled), one whose Python lacks the auditor.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from auditor.errors import InputError
from auditor.fleet import node_task
from auditor.fleet.nodes import NodeResult, node_result
from auditor.redact import scrub_text

# Ray sets these for a task according to its num_gpus (and the other accelerator resources); with
# the flag, it leaves the node's own value (ray/_private/accelerators/*.py).
LEAVE_VISIBILITY_ALONE = {f"RAY_EXPERIMENTAL_NOSET_{name}": "1" for name in (
    "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ONEAPI_DEVICE_SELECTOR",
    "TPU_VISIBLE_CHIPS", "NEURON_RT_VISIBLE_CORES")}
# What the driver waits beyond a node's own deadline before it gives the node up: the node's
# task ends its audit at the deadline (SIGTERM, then SIGKILL node_task.GRACE_S later) and answers.
_ANSWER_MARGIN_S = node_task.GRACE_S + 20.0
_CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RayNode:
    node_id: str
    address: str
    name: str  # its host name; with its id's start where two nodes share a host name

    @property
    def where(self) -> str:
        return f"ray node {self.address}, {self.node_id[:8]}"


def connect(address: str) -> Any:
    """Join the cluster at ``address`` (``auto``: the one this machine runs in) as a driver."""
    try:
        import ray
    except ImportError as exc:
        if exc.name == "ray":
            raise InputError('--ray needs Ray, which is an optional extra: pip install "ml-env-auditor[ray]"') from None
        raise InputError(f"Ray is installed but cannot be imported: {_first_line(exc)}") from None
    _reachable(address)
    try:
        with _core_logs_silenced():
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True,
                     include_dashboard=False)
    except Exception as exc:  # ConnectionError, ValueError for a malformed address, RuntimeError...
        raise InputError(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}") from None
    return ray


@contextmanager
def _core_logs_silenced() -> Iterator[None]:
    """Ray's C++ core writes each failed attempt to reach the cluster to file descriptor 2, once a
    second; the one line that ends them is ours."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _reachable(address: str) -> None:
    """Fail in seconds where Ray would retry for minutes: a driver whose GCS address answers nothing
    waits for it, 30 s at a time, without end. ``auto`` is where Ray looks for it: RAY_ADDRESS, then
    the address the last `ray start` on this machine recorded."""
    if address == "auto":
        recorded = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        address = os.environ.get("RAY_ADDRESS") or (recorded.read_text().strip() if recorded.is_file() else "")
        if not address or address == "auto":
            return  # no cluster recorded: ray.init says so at once
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"cannot connect to the Ray cluster at {address}: expected HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(f"cannot connect to the Ray cluster at {address}: "
                         f"{exc.strerror or type(exc).__name__}") from None


def alive_nodes(ray: Any) -> list[RayNode]:
    alive = [(node["NodeID"], node.get("NodeManagerAddress") or "?", node.get("NodeManagerHostname") or "?")
             for node in ray.nodes() if node.get("Alive")]
    shared = {host for host, count in Counter(host for _, _, host in alive).items() if count > 1}
    return [RayNode(node_id, address, f"{host}-{node_id[:8]}" if host in shared else host)
            for node_id, address, host in alive]


def audit_nodes(ray: Any, nodes: list[RayNode], arguments: list[str], deadline_s: float) -> list[NodeResult]:
    """Start every node's audit at once, and gather them: the fleet takes about as long as its
    slowest node, and no longer than the deadline and its margin."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # By value: a node whose Python lacks the auditor can still run the task, and say so.
    ray.cloudpickle.register_pickle_by_value(node_task)
    task = ray.remote(num_cpus=0, max_retries=0)(node_task.audit_this_node)
    refs = {node: task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                               runtime_env={"env_vars": LEAVE_VISIBILITY_ALONE}, name=f"auditor-{node.name}")
                  .remote(arguments, deadline_s)
            for node in nodes}
    started = time.monotonic()
    ray.wait(list(refs.values()), num_returns=len(refs), timeout=deadline_s + _ANSWER_MARGIN_S)
    results = []
    for node, ref in refs.items():
        ready, _ = ray.wait([ref], timeout=0)
        if not ready:
            ray.cancel(ref, force=True)
            results.append(NodeResult(node.name, node.where, None,
                                      f"no answer within {time.monotonic() - started:.0f} s; its task was cancelled"))
            continue
        try:
            answer = ray.get(ref)
        except Exception as exc:  # the node died, its worker crashed, the task could not be loaded there
            results.append(NodeResult(node.name, node.where, None, ray_failure(exc)))
            continue
        results.append(_from_answer(node, answer, deadline_s))
    return results


def _from_answer(node: RayNode, answer: dict, deadline_s: float) -> NodeResult:
    name, where = node.name, node.where
    status = answer.get("status")
    if status == "timeout":
        return NodeResult(name, where, None, f"its audit ran past {deadline_s:g} s and was stopped")
    if status == "no-auditor":
        return NodeResult(name, where, None, f"the auditor is not installed for {answer.get('python')} on the node")
    if status != "ok":
        return NodeResult(name, where, None, f"its audit failed (exit {answer.get('returncode')}): "
                                             f"{_last_line(answer.get('stderr') or '') or 'no output'}")
    return node_result(name, where, answer["report"])


def ray_failure(exc: Exception) -> str:
    """Ray's errors carry a whole traceback; the row needs its kind and first line."""
    kind = type(exc).__name__
    if "NodeDied" in kind or "node" in str(exc).lower() and "died" in str(exc).lower():
        return f"the node died during its audit ({kind})"
    return f"its task failed on the node ({kind}: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return scrub_text(text.splitlines()[0] if text else type(exc).__name__)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return scrub_text(lines[-1]) if lines else ""


def audit_arguments(deep: bool, timeout_s: Optional[float]) -> list[str]:
    """What each node's `auditor audit` is given: the proofs the goals need and the probe deadline.
    The goals themselves are judged here, on the gathered snapshots."""
    return [*(["--deep"] if deep else []), *(["--timeout", f"{timeout_s:g}"] if timeout_s else [])]
