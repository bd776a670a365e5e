"""The all_reduce proof across the nodes of a Ray cluster: one torch.distributed rank on each node
that proved torch, meeting at rank 0's node, checked against the exact sum and timed as the local
proof is (auditor/probes/collective_child.py: run_rank, proof_from_ranks).

NCCL when every such node has a CUDA build of torch that proved a GPU (a rank per node, on its
first GPU), else gloo over the CPUs. Each rank is a Ray task pinned to its node, in a worker that
ends with it (max_calls=1: a rank after a failed collective must not serve another task); a rank
that does not answer by the deadline is cancelled and named as hung.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from auditor.facts import CollectiveProof, Snapshot, from_dict
from auditor.fleet import node_task
from auditor.fleet.ray_cluster import LEAVE_VISIBILITY_ALONE, RayNode, ray_failure
from auditor.probes.collective_child import DEFAULT_BYTES, proof_from_ranks, run_rank

ACCELERATOR_BYTES = 64 << 20
_MARGIN_S = 20.0  # beyond the ranks' deadline: their own collectives time out before it


def prove_across(ray: Any, nodes: list[RayNode], snapshots: dict[str, Snapshot],
                 deadline_s: float) -> Optional[CollectiveProof]:
    """None when fewer than two nodes proved torch: there is nothing to reduce across."""
    ranked = [node for node in nodes if node.name in snapshots and _torch_proven(snapshots[node.name])]
    if len(ranked) < 2:
        return None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    gpus = all(_torch_proven(snapshots[node.name], on_gpu=True) for node in ranked)
    backend, nbytes = ("nccl", ACCELERATOR_BYTES) if gpus else ("gloo", DEFAULT_BYTES)

    def on(node: RayNode) -> dict:
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                "runtime_env": {"env_vars": LEAVE_VISIBILITY_ALONE}}

    ray.cloudpickle.register_pickle_by_value(node_task)
    port_task = ray.remote(num_cpus=0, max_retries=0)(node_task.free_port)
    try:
        port = ray.get(port_task.options(**on(ranked[0])).remote(), timeout=60)
    except Exception as exc:
        return _unreachable(backend, ranked, nbytes, f"rank 0's node could not name a port: {ray_failure(exc)}")
    rank_task = ray.remote(num_cpus=0, max_retries=0, max_calls=1)(run_rank)
    refs = [rank_task.options(**on(node)).remote(rank, len(ranked), ranked[0].address, port, backend, deadline_s,
                                                 None, nbytes)
            for rank, node in enumerate(ranked)]
    started = time.monotonic()
    ray.wait(refs, num_returns=len(refs), timeout=deadline_s + _MARGIN_S)
    ranks = []
    for rank, ref in enumerate(refs):
        device = "cpu" if backend == "gloo" else "cuda:0"
        if not ray.wait([ref], timeout=0)[0]:
            ray.cancel(ref, force=True)
            ranks.append({"rank": rank, "device": device,
                          "hung": f"no answer within {time.monotonic() - started:.0f} s; cancelled"})
            continue
        try:
            ranks.append(ray.get(ref))
        except Exception as exc:  # the node died, the worker crashed
            ranks.append({"rank": rank, "device": device, "crashed": ray_failure(exc)})
    proof = proof_from_ranks("torch", backend, ranks, nbytes, scope="cluster")
    return from_dict(CollectiveProof, dict(proof, nodes=[node.name for node in ranked]))


def _torch_proven(snapshot: Snapshot, on_gpu: bool = False) -> bool:
    torch = snapshot.frameworks.get("torch")
    if torch is None or not torch.proofs:
        return False
    kinds = {"cuda"} if on_gpu else {"cpu", "cuda", "rocm"}
    proven = any(proof.ok and proof.dtype == "float32" and proof.device.split(":")[0] in kinds for proof in torch.proofs)
    return proven and (not on_gpu or (torch.build is not None and torch.build.variant == "cuda"))


def _unreachable(backend: str, ranked: list[RayNode], nbytes: int, why: str) -> CollectiveProof:
    return CollectiveProof("torch", backend, len(ranked), False, devices=["cpu"] * len(ranked), bytes=nbytes,
                           error=why, failed_ranks=[0], scope="cluster", nodes=[node.name for node in ranked])
