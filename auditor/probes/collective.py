"""The collective proofs from the parent's side: the runs planned from what the framework children
found, and the proofs the collective child (collective_child.py) returns, typed.

Each framework that proved a device gets one run: across its GPUs (or TPUs, for JAX) when it sees
two or more of them, else across two CPU ranks, which proves the distributed machinery that a
multi-GPU job needs as well (process groups, rendezvous, the collective itself) without GPUs.
"""

from __future__ import annotations

import json
from typing import Mapping

from auditor.facts import CollectiveProof, FrameworkFacts, ProbeRun, SnapshotFormatError, from_dict
from auditor.probes.child import ChildOutcome
from auditor.probes.collective_child import PLAN

# Each rank's buffer: a few MiB between CPU processes; more between accelerators, whose links
# would otherwise be timed mostly by their latency.
CPU_BYTES = 4 << 20
ACCELERATOR_BYTES = 64 << 20
CPU_RANKS = 2
# Beyond the runs' own deadlines, for the child to start and report.
CHILD_MARGIN_S = 15.0
_ACCELERATORS = ("cuda", "rocm", "gpu", "tpu")


def plan(frameworks: Mapping[str, FrameworkFacts], deadline_s: float) -> list[dict]:
    """The runs, in the order they go, each with ``deadline_s``; none for a framework whose probe
    listed no devices (it failed: its own findings say so)."""
    planners = {"torch": _torch, "jax": _jax, "tensorflow": _tensorflow}
    runs = []
    for name, planner in planners.items():
        facts = frameworks.get(name)
        if facts is not None and facts.probe.status == "ok" and facts.devices:
            runs.append(dict(planner(facts), deadline_s=deadline_s))
    return runs


def _accelerators(facts: FrameworkFacts) -> list[str]:
    return [device.id for device in facts.devices if device.kind in _ACCELERATORS]


def _torch(facts: FrameworkFacts) -> dict:
    gpus = _accelerators(facts)
    variant = facts.build.variant if facts.build else None
    if len(gpus) >= 2 and variant in ("cuda", "rocm"):
        return {"framework": "torch", "backend": "nccl" if variant == "cuda" else "rccl", "devices": gpus,
                "bytes": ACCELERATOR_BYTES}
    return {"framework": "torch", "backend": "gloo", "devices": ["cpu"] * CPU_RANKS, "bytes": CPU_BYTES}


def _jax(facts: FrameworkFacts) -> dict:
    accelerators = [device for device in facts.devices if device.kind in _ACCELERATORS]
    if len(accelerators) >= 2:
        return {"framework": "jax", "backend": f"xla:{accelerators[0].kind}",
                "devices": [device.id for device in accelerators], "bytes": ACCELERATOR_BYTES}
    return {"framework": "jax", "backend": "xla:cpu", "devices": [f"cpu:{rank}" for rank in range(CPU_RANKS)],
            "bytes": CPU_BYTES}


def _tensorflow(facts: FrameworkFacts) -> dict:
    # "/physical_device:GPU:1" -> "/gpu:1"; TPUs need a TPUStrategy, not a MirroredStrategy.
    gpus = [f"/gpu:{device.id.rpartition(':')[2]}" for device in facts.devices if device.kind == "gpu"]
    if len(gpus) >= 2:
        return {"framework": "tensorflow", "backend": "NcclAllReduce", "devices": gpus, "bytes": ACCELERATOR_BYTES}
    return {"framework": "tensorflow", "backend": "ReductionToOneDevice",
            "devices": [f"/cpu:{rank}" for rank in range(CPU_RANKS)], "bytes": CPU_BYTES}


def child_deadline(runs: list[dict]) -> float:
    return sum(run["deadline_s"] for run in runs) + CHILD_MARGIN_S


def child_environment(runs: list[dict]) -> dict[str, str]:
    return {PLAN: json.dumps(runs)}


def judge(name: str, outcome: ChildOutcome, runs: list[dict]) -> tuple[ProbeRun, list[CollectiveProof]]:
    """The probe's run record and its proofs. A child that failed, or returned something else than
    a proof for each run, leaves each run broken, saying why: a collective that takes the process
    down with it is what a job would meet too."""
    run = ProbeRun(name, outcome.status, outcome.reason, outcome.duration_s)
    if outcome.status == "ok":
        try:
            returned = outcome.payload["collectives"]
            if not isinstance(returned, list) or len(returned) != len(runs):
                raise SnapshotFormatError(f"$.collectives: expected {len(runs)} proofs")
            return run, [from_dict(CollectiveProof, proof, f"$.collectives[{index}]")
                         for index, proof in enumerate(returned)]
        except (KeyError, TypeError, SnapshotFormatError) as exc:
            run = ProbeRun(name, "error", f"the probe returned malformed facts: {exc}", outcome.duration_s)
    failure = f"the {name} probe {run.status}: {run.reason}"
    return run, [CollectiveProof(planned["framework"], planned["backend"], len(planned["devices"]), False,
                                 devices=list(planned["devices"]), bytes=planned["bytes"], error=failure)
                 for planned in runs]
