"""Collective proofs: an all_reduce across ranks or devices, checked against its exact sum and
timed. Runs only inside a child process (see probes/child.py), after every other probe has ended.

The parent plans the runs from what the framework children found (probes/collective.py) and
passes them in AUDITOR_COLLECTIVES; each run goes, one after the other, in processes of its own:

- torch.distributed: a process per rank (``run_rank``), meeting over TCP on 127.0.0.1 at a free
  port; gloo between CPU processes, NCCL between the local GPUs (RCCL on ROCm, which torch calls
  "nccl" too);
- JAX: psum over the devices of one process, two host CPU devices (forced with XLA_FLAGS) or the GPUs;
- TensorFlow: MirroredStrategy's all_reduce in replica context, over two logical CPU devices or the GPUs.

Every process of a run shares the run's deadline: one still running then is killed with its
process group and named as hung; one that dies is named as crashed, with the last line it wrote.
Each rank's collectives time out a little before the deadline (init_process_group's timeout), so a
rank left waiting for a hung peer says so itself.

Each rank contributes integer-valued float32 data that depends on its rank (index mod 251, plus
the rank), so the sum is exact in float32 (every partial sum is an integer below 2**24 for up to
4,096 ranks): any difference from it is an error, not rounding. The timing is a warm-up, then the
median of several all_reduces of the run's buffer; the bus bandwidth is computed as nccl-tests
does for all_reduce (doc/PERFORMANCE.md): busbw = algbw x 2(n-1)/n, algbw = bytes / time.

``run_rank`` and ``proof_from_ranks`` are the reusable parts: a cross-node proof calls
``run_rank`` once on each node (a Ray actor, say) and ``proof_from_ranks`` on what they returned.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import math
import os
import signal
import socket
import statistics
import sys
import time
from typing import Optional

from auditor.probes import processes
from auditor.probes.base import ProbeAbsent
from auditor.probes.child_entry import describe_exception

PLAN = "AUDITOR_COLLECTIVES"
PATTERN = 251  # each rank's value at index i is i % PATTERN + rank: exact sums up to 4,096 ranks
DEFAULT_BYTES = 4 << 20
WARMUP = 3
TIMED_ITERATIONS = 10
# What a rank keeps of its deadline to report a collective that timed out: the larger the deadline,
# the more a slow start (importing torch, initialising CUDA) may take of it.
REPORT_MARGIN_S = 5.0
_RESULT_LIMIT = 1 << 20  # a worker's result is a few hundred bytes
_REASON_LIMIT = 300
_ERROR_LIMIT = 1000
_BOOTSTRAP = (
    "import sys; del sys.path[0]; sys.dont_write_bytecode = {no_bytecode!r}\n"
    "import importlib.util\n"
    "spec = importlib.util.spec_from_file_location('auditor', {init!r}, submodule_search_locations=[{package!r}])\n"
    "sys.modules['auditor'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(sys.modules['auditor'])\n"
    "from auditor.probes.collective_child import worker_main; worker_main()"
)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collect() -> dict:
    planned = os.environ.pop(PLAN, None)
    if planned is None:
        raise ProbeAbsent("no collective was planned (the parent plans them from the framework probes)")
    return {"collectives": [prove(run, dict(os.environ)) for run in json.loads(planned)]}


def prove(run: dict, env: dict) -> dict:
    """One planned run ({"framework", "backend", "devices", "bytes", "deadline_s"}) in processes of its
    own started with ``env``: its CollectiveProof's fields."""
    framework, devices, deadline_s = run["framework"], run["devices"], run["deadline_s"]
    nbytes = run["bytes"]
    if framework == "torch":
        port = free_port()
        jobs = [("torch", {"rank": rank, "world_size": len(devices), "master_host": "127.0.0.1", "master_port": port,
                           "backend": run["backend"], "deadline_s": deadline_s, "device": device, "nbytes": nbytes},
                 dict(env, **_launcher_variables(rank, len(devices), port)))
                for rank, device in enumerate(devices)]
        # A rank without a result is still the rank it was started as, on its device.
        ranks = [dict({"rank": rank, "device": device}, **outcome)
                 for rank, (device, outcome) in enumerate(zip(devices, _run_workers(jobs, deadline_s)))]
    else:
        if framework == "jax" and run["backend"] == "xla:cpu":
            forced = f"--xla_force_host_platform_device_count={len(devices)}"
            env = dict(env, XLA_FLAGS=" ".join(filter(None, (env.get("XLA_FLAGS"), forced))), JAX_PLATFORMS="cpu")
        (outcome,) = _run_workers([(framework, {"devices": devices, "nbytes": nbytes}, env)], deadline_s)
        # One process holds every device: its failure is each of theirs.
        ranks = outcome.get("ranks") or [dict(outcome, rank=rank, device=device) for rank, device in enumerate(devices)]
    return proof_from_ranks(framework, run["backend"], ranks, nbytes)


def _launcher_variables(rank: int, world_size: int, port: int) -> dict:
    """What torchrun sets for each rank: code that reads them (a library's LOCAL_RANK) meets them here too."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def free_port() -> int:
    """A TCP port nothing listens on now, for rank 0 to serve the rendezvous on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- one rank of torch.distributed ------------------------------------------------------------


def run_rank(rank: int, world_size: int, master_host: str, master_port: int, backend: str, deadline_s: float,
             device: Optional[str] = None, nbytes: int = DEFAULT_BYTES, iterations: int = TIMED_ITERATIONS) -> dict:
    """One rank of a torch.distributed all_reduce proof, in this process: join the group (rank 0
    serves the TCP rendezvous at master_host:master_port), all_reduce this rank's data and check the
    exact sum, then time ``iterations`` all_reduces of ``nbytes`` after a warm-up.

    ``backend``: gloo, nccl, or rccl (torch's "nccl" backend on a ROCm build). ``device``: "cpu" or
    "cuda:N"; by default cpu for gloo, else cuda:0 (a node's one GPU, as a Ray actor given one GPU
    sees it). Joining and every collective time out before ``deadline_s`` from the call.

    Returns {"rank", "world_size", "backend", "device", "host", "bytes", "ok", "max_abs_error",
    "seconds" (the median timed all_reduce), "error", "skipped"}. A failure is the finding, so it is
    returned, never raised. After a failure the process group is left as it is (destroying a broken
    NCCL communicator can hang): end the process.
    """
    started = time.monotonic()
    device = device or ("cpu" if backend == "gloo" else "cuda:0")
    result = {"rank": rank, "world_size": world_size, "backend": backend, "device": device,
              "host": socket.gethostname(), "bytes": nbytes // 4 * 4, "ok": False, "max_abs_error": None,
              "seconds": None, "error": None, "skipped": None}
    try:
        import torch
        import torch.distributed as dist

        name = "gloo" if backend == "gloo" else "nccl"
        result["skipped"] = _unavailable(dist, name)
        if result["skipped"]:
            return result
        if device != "cpu":
            torch.cuda.set_device(torch.device(device))
        margin = min(REPORT_MARGIN_S, deadline_s / 4)
        timeout = max(1.0, deadline_s - margin - (time.monotonic() - started))
        host = f"[{master_host}]" if ":" in master_host else master_host
        dist.init_process_group(name, init_method=f"tcp://{host}:{master_port}", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout))
        result.update(_all_reduce(torch, dist, rank, world_size, device, nbytes // 4, iterations))
        dist.destroy_process_group()
    except Exception as exc:  # a rank that cannot join or reduce is what the proof reports
        result["error"] = describe_exception(exc)
    return result


def _unavailable(dist, backend: str) -> Optional[str]:
    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if backend == "gloo" and not dist.is_gloo_available():
        return "this torch build has no gloo backend"
    if backend == "nccl" and not dist.is_nccl_available():
        return "this torch build has no NCCL backend"
    return None


def _all_reduce(torch, dist, rank: int, world_size: int, device: str, count: int, iterations: int) -> dict:
    index = torch.arange(count, device=device) % PATTERN
    values = (index + rank).to(torch.float32)
    dist.all_reduce(values)
    expected = (index * world_size + world_size * (world_size - 1) // 2).to(torch.float32)
    checked = _judge_sum(float((values - expected).abs().max()))
    # Timed on a buffer of its own: reducing the checked one again and again would grow it past float32.
    timed = torch.zeros(count, device=device)
    barrier = {"device_ids": [torch.cuda.current_device()]} if device != "cpu" else {}
    times = []
    for iteration in range(WARMUP + iterations):
        dist.barrier(**barrier)  # every rank starts each all_reduce together
        _synchronize(torch, device)
        began = time.perf_counter()
        dist.all_reduce(timed)
        _synchronize(torch, device)
        if iteration >= WARMUP:
            times.append(time.perf_counter() - began)
    return dict(checked, seconds=statistics.median(times))


def _synchronize(torch, device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


def _judge_sum(error: float) -> dict:
    """A rank's verdict on its sum from the largest difference to the exact one: right only when 0.
    NaN or infinity is recorded as an unknown difference (JSON has no such numbers), wrong all the same."""
    if not math.isfinite(error):
        return {"ok": False, "max_abs_error": None}
    return {"ok": error == 0, "max_abs_error": error}


# --- JAX and TensorFlow: every device in one process ------------------------------------------


def jax_all_reduce(devices: list, nbytes: int, iterations: int = TIMED_ITERATIONS) -> dict:
    """psum over the named JAX devices ("cpu:0", "gpu:1"...) of this process, each device one rank."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:  # before JAX 0.7 it lived in jax.experimental
        from jax.experimental.shard_map import shard_map
    platform = devices[0].split(":")[0]  # as the JAX probe names them: "{platform}:{id}"
    found = {f"{platform}:{d.id}": d for d in jax.devices(platform)}
    missing = [name for name in devices if name not in found]
    if missing:
        raise RuntimeError(f"JAX shows no device {', '.join(missing)} (it has {', '.join(sorted(found)) or 'none'})")
    n, count = len(devices), nbytes // 4
    mesh = Mesh(np.array([found[name] for name in devices]), ("ranks",))
    index = np.arange(count) % PATTERN
    rows = jax.device_put(np.stack([index + rank for rank in range(n)]).astype(np.float32),
                          NamedSharding(mesh, PartitionSpec("ranks")))
    reduce = jax.jit(shard_map(lambda row: jax.lax.psum(row, "ranks"), mesh=mesh, in_specs=PartitionSpec("ranks"),
                               out_specs=PartitionSpec("ranks")))
    summed = reduce(rows)
    summed.block_until_ready()
    expected = (index * n + n * (n - 1) // 2).astype(np.float32)
    errors = {f"{shard.device.platform}:{shard.device.id}": float(np.max(np.abs(np.asarray(shard.data)[0] - expected)))
              for shard in summed.addressable_shards}

    def step():
        reduce(rows).block_until_ready()

    seconds = _median_time(step, iterations)
    return {"ranks": [dict(_judge_sum(errors[name]), rank=rank, device=name, seconds=seconds, error=None)
                      for rank, name in enumerate(devices)]}


def tensorflow_all_reduce(devices: list, nbytes: int, iterations: int = TIMED_ITERATIONS) -> dict:
    """MirroredStrategy over the named devices ("/cpu:0" and "/cpu:1", logical CPU devices made here,
    or "/gpu:N"), each replica one rank, doing an all_reduce in replica context."""
    import numpy as np
    import tensorflow as tf

    on_gpus = devices[0].startswith("/gpu")
    if not on_gpus:  # before anything initialises the runtime
        (cpu, *_) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * len(devices))
    # The ones MirroredStrategy picks by default for these devices, named so the backend is known.
    cross_device_ops = tf.distribute.NcclAllReduce() if on_gpus else tf.distribute.ReductionToOneDevice()
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops)
    n, count = len(devices), nbytes // 4

    def rank_values(context):  # made by an op, so each replica's tensor is on its own device
        return tf.cast(tf.range(count) % PATTERN + context.replica_id_in_sync_group, tf.float32)

    values = strategy.experimental_distribute_values_from_function(rank_values)

    @tf.function
    def reduce(per_replica):
        return strategy.run(lambda x: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, x),
                            args=(per_replica,))

    summed = strategy.experimental_local_results(reduce(values))
    expected = (np.arange(count) % PATTERN * n + n * (n - 1) // 2).astype(np.float32)
    ranks = [dict(_judge_sum(float(np.max(np.abs(tensor.numpy() - expected)))), rank=rank, error=None,
                  device=device.rpartition("/")[2])
             for rank, (device, tensor) in enumerate(zip(strategy.extended.worker_devices, summed))]

    def step():
        for tensor in strategy.experimental_local_results(reduce(values)):
            tensor[0].numpy()  # one value: waits for the reduction without copying it all back

    seconds = _median_time(step, iterations)
    return {"ranks": [dict(rank, seconds=seconds) for rank in ranks]}


def _median_time(step, iterations: int) -> float:
    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(iterations):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


# --- judging the ranks ------------------------------------------------------------------------


def proof_from_ranks(framework: str, backend: str, ranks: list, nbytes: int, scope: str = "local") -> dict:
    """The CollectiveProof fields from every rank's outcome, in rank order: what ``run_rank`` (or the
    JAX and TensorFlow runs) returned, or {"rank", "device", "hung": why} / {..., "crashed": why} for a
    rank that gave no result. The ranks to blame are those that hung, crashed or gave a wrong sum; only
    when there are none, those that raised (a rank left waiting for a broken peer raises too, and is
    named after them). A cluster proof (``scope`` "cluster") lists each rank's host in ``nodes``."""
    n = len(ranks)
    faults, raised = [], []
    for rank in ranks:
        fault = _fault(rank)
        if fault:
            faults.append((rank["rank"], fault))
        elif rank.get("error"):
            raised.append((rank["rank"], f"raised {rank['error']}"))
    blamed = faults or raised
    errors = [rank["max_abs_error"] for rank in ranks if rank.get("max_abs_error") is not None]
    proof = {"framework": framework, "backend": backend, "world_size": n, "operation": "all_reduce",
             "devices": [str(rank.get("device")) for rank in ranks], "dtype": "float32", "bytes": nbytes // 4 * 4,
             "max_abs_error": max(errors) if errors else None, "seconds": None, "algbw_gbps": None, "busbw_gbps": None,
             "error": None, "failed_ranks": [rank for rank, _ in blamed], "skipped": None, "scope": scope,
             "nodes": [str(rank.get("host")) for rank in ranks] if scope == "cluster" else []}
    skipped = next((rank["skipped"] for rank in ranks if rank.get("skipped")), None)
    if skipped:
        return dict(proof, ok=False, skipped=skipped, failed_ranks=[])
    if blamed:
        told = _grouped(blamed) + (["then " + line for line in _grouped(raised)] if faults else [])
        return dict(proof, ok=False, error="; ".join(told)[:_ERROR_LIMIT])
    seconds = max(rank["seconds"] for rank in ranks)  # the collective is done when its slowest rank is
    algbw = proof["bytes"] / seconds / 1e9
    return dict(proof, ok=True, seconds=round(seconds, 6), algbw_gbps=round(algbw, 3),
                busbw_gbps=round(algbw * 2 * (n - 1) / n, 3))


def _fault(rank: dict) -> Optional[str]:
    """What the rank itself did wrong; None when nothing (it passed, raised, or was skipped)."""
    if rank.get("hung"):
        return f"hung: {rank['hung']}"
    if rank.get("crashed"):
        return f"crashed: {rank['crashed']}"
    if not rank.get("ok") and not rank.get("error") and not rank.get("skipped"):
        error = rank.get("max_abs_error")
        return ("returned a wrong sum (NaN or infinity)" if error is None else
                f"returned a wrong sum (off by up to {error:g} from the exact sum)")
    return None


def _grouped(failures: list) -> list:
    """"rank 1 hung: ...", naming together the ranks that failed the same way ("ranks 0, 1 hung: ...")."""
    by_reason: dict = {}
    for rank, reason in failures:
        by_reason.setdefault(reason, []).append(rank)
    return [f"rank {ranks[0]} {reason}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))} {reason}"
            for reason, ranks in by_reason.items()]


# --- worker processes -------------------------------------------------------------------------


_JOBS = {"torch": run_rank, "jax": jax_all_reduce, "tensorflow": tensorflow_all_reduce}


def _run_workers(jobs: list, deadline_s: float) -> list:
    """Start a worker process for each (kind, arguments, environment) at once and wait for them all,
    until the deadline at most; each one's result, or why it has none ({"hung"} or {"crashed"})."""
    deadline = time.monotonic() + deadline_s
    started = []
    try:
        for kind, arguments, env in jobs:
            started.append(processes.start(_worker_command(kind, arguments), env))
        with concurrent.futures.ThreadPoolExecutor(len(started)) as pool:
            finished = list(pool.map(lambda process: processes.finish(process, deadline, _RESULT_LIMIT), started))
    finally:
        for process in started:  # finish() ended each already, unless this was interrupted
            processes.end(process)
    return [_outcome(done, deadline_s) for done in finished]


def _worker_command(kind: str, arguments: dict) -> list:
    code = _BOOTSTRAP.format(no_bytecode=sys.dont_write_bytecode, init=os.path.join(_PACKAGE, "__init__.py"),
                             package=_PACKAGE)
    return [sys.executable, "-c", code, json.dumps({"kind": kind, "arguments": arguments, "parent": os.getpid()})]


def _outcome(finished, deadline_s: float) -> dict:
    if finished.returncode is None:
        return {"hung": f"no answer within {deadline_s:g} s; killed with its process group"}
    last = _last_line(bytes(finished.stderr))
    if finished.overflowed:
        return {"crashed": f"wrote more than {_RESULT_LIMIT >> 20} MiB as its result"}
    if finished.returncode < 0:
        return {"crashed": _join(f"killed by {_signal_name(-finished.returncode)}", last)}
    try:
        result = json.loads(bytes(finished.stdout))
    except ValueError:
        return {"crashed": _join(f"exited with status {finished.returncode} and no result", last)}
    return result if isinstance(result, dict) else {"crashed": "its result is not a JSON object"}


def worker_main() -> None:
    """A worker process's entry (its bootstrap calls it): the job in argv, its result as one JSON
    object on the stdout it keeps for itself, whatever the framework prints."""
    job = json.loads(sys.argv[1])
    processes.die_with_parent(job["parent"])  # a killed orchestrator takes its ranks along
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = _JOBS[job["kind"]](**job["arguments"])
    except BaseException as exc:  # the worker exists to turn any failure into a result
        result = {"error": describe_exception(exc)}
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out, default=str, allow_nan=False)
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: framework atexit hooks can hang (NCCL, gRPC)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(stderr: bytes) -> Optional[str]:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return " ".join(lines[-1].split())[:_REASON_LIMIT] if lines else None


def _join(reason: str, detail: Optional[str]) -> str:
    return f"{reason}: {detail}" if detail else reason
